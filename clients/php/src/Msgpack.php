<?php

declare(strict_types=1);

namespace Sluice;

/**
 * The msgpack encoding of requests. php-msgpack's msgpack_pack() writes every PHP string as
 * msgpack str, but a payload is bytes (PROTOCOL.md: blob), so requests are encoded here:
 * strings as str (names, the token), payloads as bin (Msgpack::bin(), or any string under the
 * keys "payloads" and "payload"). Replies are decoded with msgpack_unpack().
 */
final class Msgpack
{
    public static function str(string $s): string
    {
        $n = strlen($s);
        if ($n < 32) {
            return chr(0xa0 | $n) . $s;
        }
        if ($n < 0x100) {
            return "\xd9" . chr($n) . $s;
        }
        if ($n < 0x10000) {
            return "\xda" . pack('n', $n) . $s;
        }
        return "\xdb" . pack('N', $n) . $s;
    }

    public static function bin(string $s): string
    {
        $n = strlen($s);
        if ($n < 0x100) {
            return "\xc4" . chr($n) . $s;
        }
        if ($n < 0x10000) {
            return "\xc5" . pack('n', $n) . $s;
        }
        return "\xc6" . pack('N', $n) . $s;
    }

    public static function int(int $v): string
    {
        if ($v >= 0) {
            if ($v < 0x80) {
                return chr($v);
            }
            if ($v < 0x100) {
                return "\xcc" . chr($v);
            }
            if ($v < 0x10000) {
                return "\xcd" . pack('n', $v);
            }
            if ($v <= 0xffffffff) {
                return "\xce" . pack('N', $v);
            }
            return "\xcf" . pack('J', $v);
        }
        if ($v >= -32) {
            return chr($v & 0xff);
        }
        return "\xd3" . pack('J', $v);
    }

    public static function arrayHead(int $n): string
    {
        if ($n < 16) {
            return chr(0x90 | $n);
        }
        if ($n < 0x10000) {
            return "\xdc" . pack('n', $n);
        }
        return "\xdd" . pack('N', $n);
    }

    public static function mapHead(int $n): string
    {
        if ($n < 16) {
            return chr(0x80 | $n);
        }
        if ($n < 0x10000) {
            return "\xde" . pack('n', $n);
        }
        return "\xdf" . pack('N', $n);
    }

    /** The bin array of a list of payloads. */
    public static function blobs(array $payloads): string
    {
        $out = self::arrayHead(count($payloads));
        foreach ($payloads as $p) {
            $n = strlen($p);
            $out .= ($n < 0x100 ? "\xc4" . chr($n) : ($n < 0x10000 ? "\xc5" . pack('n', $n)
                : "\xc6" . pack('N', $n))) . $p;
        }
        return $out;
    }

    /**
     * Any value: null, bool, int, float, string (str), a list (array) or a map with string
     * keys. $binary: strings are bin (the payloads).
     */
    public static function pack($v, bool $binary = false): string
    {
        if (is_string($v)) {
            return $binary ? self::bin($v) : self::str($v);
        }
        if (is_int($v)) {
            return self::int($v);
        }
        if (is_bool($v)) {
            return $v ? "\xc3" : "\xc2";
        }
        if ($v === null) {
            return "\xc0";
        }
        if (is_float($v)) {
            return "\xcb" . pack('E', $v);
        }
        if (is_array($v)) {
            if (array_is_list($v)) {
                $out = self::arrayHead(count($v));
                foreach ($v as $x) {
                    $out .= self::pack($x, $binary);
                }
                return $out;
            }
            return self::map($v);
        }
        throw new \InvalidArgumentException('cannot send a value of type ' . get_debug_type($v));
    }

    /** A map with string keys; the values of "payloads" and "payload" are bin. */
    public static function map(array $m): string
    {
        $out = self::mapHead(count($m));
        foreach ($m as $k => $x) {
            $k = (string) $k;
            $out .= self::str($k) . self::pack($x, $k === 'payloads' || $k === 'payload');
        }
        return $out;
    }
}
