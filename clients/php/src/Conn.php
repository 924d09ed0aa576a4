<?php

declare(strict_types=1);

namespace Sluice;

/**
 * One connection to a broker, in the framing of nng's SP protocols (PROTOCOL.md, "Speaking
 * the protocol without nng"): the req0 handshake, then frames of a u64 big-endian length
 * (after a 0x01 type byte on IPC) and a body of a 4-byte request id and a msgpack map.
 *
 * Failures are thrown as ConnLost (the connection failed or closed: connect and send
 * again), ConnTimeout (the deadline passed) or BadPeer (the peer broke the protocol); the
 * caller drops the connection on any of them.
 *
 * @internal
 */
final class Conn
{
    public const HELLO_REQ = "\x00SP\x00\x00\x30\x00\x00"; // req0, protocol 48
    public const HELLO_REP = "\x00SP\x00\x00\x31\x00\x00"; // rep0, protocol 49: the broker
    public const REPLY_MAX = 1 << 31; // longer than any reply a broker sends

    /** @var resource */
    private $sock;
    private bool $ipc;
    private string $rbuf = '';

    /** Connects and exchanges the SP headers; $deadline is a hrtime(true) in nanoseconds. */
    public function __construct(string $kind, string $addr, int $deadline)
    {
        $this->ipc = $kind === 'ipc';
        $ctx = stream_context_create($this->ipc ? [] : ['socket' => ['tcp_nodelay' => true]]);
        $left = self::remaining($deadline);
        $errno = 0;
        $errstr = '';
        $s = @stream_socket_client($addr, $errno, $errstr, $left, STREAM_CLIENT_CONNECT, $ctx);
        if ($s === false) {
            if ($errno === 110 || $errno === 11 || ($errno === 0 && hrtime(true) >= $deadline)) {
                throw new ConnTimeout('connect: ' . ($errstr !== '' ? $errstr : 'timed out'));
            }
            throw new ConnLost($errstr !== '' ? $errstr : 'cannot connect', $errno);
        }
        stream_set_blocking($s, false);
        stream_set_write_buffer($s, 0);
        $this->sock = $s;
        try {
            $this->write(self::HELLO_REQ, $deadline);
            $peer = $this->read(8, $deadline);
            if ($peer !== self::HELLO_REP) {
                throw new BadPeer(sprintf(
                    'the peer is not a sluice broker (SP header %s, want %s)',
                    bin2hex($peer),
                    bin2hex(self::HELLO_REP)
                ));
            }
        } catch (\Throwable $e) {
            $this->close();
            throw $e;
        }
    }

    public static function remaining(int $deadline): float
    {
        $left = ($deadline - hrtime(true)) / 1e9;
        if ($left <= 0) {
            throw new ConnTimeout('deadline passed');
        }
        return $left;
    }

    public function close(): void
    {
        if (is_resource($this->sock)) {
            @fclose($this->sock);
        }
    }

    private function wait(bool $forWrite, int $deadline): void
    {
        $left = self::remaining($deadline);
        $r = $forWrite ? null : [$this->sock];
        $w = $forWrite ? [$this->sock] : null;
        $e = null;
        $sec = (int) $left;
        $n = @stream_select($r, $w, $e, $sec, (int) (($left - $sec) * 1e6));
        if ($n === 0) {
            self::remaining($deadline); // throws once the deadline has passed
        }
        // $n === false: a signal interrupted the wait; the caller tries again.
    }

    private function write(string $data, int $deadline): void
    {
        $off = 0;
        $len = strlen($data);
        while ($off < $len) {
            $n = @fwrite($this->sock, $off === 0 ? $data : substr($data, $off));
            if ($n === false) {
                throw new ConnLost('the broker closed the connection');
            }
            if ($n === 0) {
                if (feof($this->sock)) {
                    throw new ConnLost('the broker closed the connection');
                }
                $this->wait(true, $deadline);
                continue;
            }
            $off += $n;
        }
    }

    private function read(int $n, int $deadline): string
    {
        while (strlen($this->rbuf) < $n) {
            $b = @fread($this->sock, max(65536, $n - strlen($this->rbuf)));
            if ($b === false || ($b === '' && feof($this->sock))) {
                throw new ConnLost('the broker closed the connection');
            }
            if ($b === '') {
                $this->wait(false, $deadline);
                continue;
            }
            $this->rbuf .= $b;
        }
        $out = substr($this->rbuf, 0, $n);
        $this->rbuf = (string) substr($this->rbuf, $n);
        return $out;
    }

    public function send(string $body, int $deadline): void
    {
        $head = pack('J', strlen($body));
        $this->write(($this->ipc ? "\x01" . $head : $head) . $body, $deadline);
    }

    /** The body of the next frame: the 4-byte request id and the msgpack reply. */
    public function recv(int $deadline): string
    {
        if ($this->ipc) {
            $head = $this->read(9, $deadline);
            if ($head[0] !== "\x01") {
                throw new BadPeer(sprintf('frame of type %d, want 1', ord($head[0])));
            }
            $head = substr($head, 1);
        } else {
            $head = $this->read(8, $deadline);
        }
        $hi = unpack('N2', $head);
        if ($hi[1] !== 0 || $hi[2] < 4 || $hi[2] > self::REPLY_MAX) {
            throw new BadPeer(sprintf('a reply of %s bytes', $hi[1] !== 0 ? 'over 2^32'
                : (string) $hi[2]));
        }
        return $this->read($hi[2], $deadline);
    }
}
