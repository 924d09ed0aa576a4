<?php

declare(strict_types=1);

namespace Sluice;

/**
 * Where the broker is and what token it wants: the same rules as the sluice programs.
 *
 * The default address is ipc://DIR/broker.ipc in the runtime directory DIR ($SLUICE_DIR,
 * else $XDG_RUNTIME_DIR/sluice, else /tmp/sluice-$UID). Before using it the client checks that
 * DIR is not a symbolic link, is its user's and open to nobody else, and that a socket there
 * is not a symbolic link, another user's or writable by others: whoever could replace them
 * could answer in the broker's place. An address given explicitly ($url, $SLUICE_URL) is the
 * user's choice and used as given.
 */
final class Config
{
    public const SOCKET_PATH_MAX = 107; // sun_path holds 108 bytes with its terminating NUL
    public const TOKEN_MAX = 1024;

    private const S_IFMT = 0170000;
    private const S_IFDIR = 0040000;
    private const S_IFLNK = 0120000;
    private const S_IFREG = 0100000;

    public static function env(string $name): string
    {
        $v = getenv($name);
        return is_string($v) ? $v : '';
    }

    public static function runtimeDir(): string
    {
        $d = self::env('SLUICE_DIR');
        if ($d === '') {
            $xdg = self::env('XDG_RUNTIME_DIR');
            $d = $xdg !== '' ? $xdg . '/sluice' : '/tmp/sluice-' . posix_getuid();
        }
        while (strlen($d) > 1 && substr($d, -1) === '/') {
            $d = substr($d, 0, -1); // a trailing slash would double in the socket paths
        }
        return $d;
    }

    /** @param array<string, int> $st */
    private static function describe(array $st): string
    {
        return sprintf('owned by uid %d, mode %04o', $st['uid'], $st['mode'] & 07777);
    }

    /** @return array<string, int>|null null when nothing is there */
    private static function lstat(string $path, string $what): ?array
    {
        clearstatcache(true, $path);
        $st = @lstat($path);
        if ($st !== false) {
            return $st;
        }
        if (!file_exists($path) && !is_link($path)) {
            return null;
        }
        throw new Exception('io', "$what $path: cannot be examined");
    }

    /** False when $d is missing; throws Exception("forbidden") when it may not be trusted. */
    public static function checkDir(string $d): bool
    {
        $st = self::lstat($d, 'runtime directory');
        if ($st === null) {
            return false;
        }
        $what = self::describe($st);
        $me = posix_geteuid();
        $type = $st['mode'] & self::S_IFMT;
        if ($type === self::S_IFLNK) {
            $why = "runtime directory $d is a symbolic link ($what): refused, whoever made it "
                . 'could point it elsewhere; remove it, or set SLUICE_DIR to a directory of '
                . 'your own';
        } elseif ($type !== self::S_IFDIR) {
            $why = "runtime directory $d is not a directory ($what): remove it, or set "
                . 'SLUICE_DIR to a directory of your own';
        } elseif ($st['uid'] !== $me) {
            $why = "runtime directory $d is $what, not yours (uid $me): refused, its owner "
                . 'could serve its sockets; remove it, or set SLUICE_DIR to a directory of '
                . 'your own';
        } elseif (($st['mode'] & 067) !== 0) {
            // A group given --socket-group may search it (0710), no more.
            $why = "runtime directory $d is $what: refused, others may reach or replace its "
                . "sockets; chmod 700 $d (or 710, for a group given --socket-group)";
        } else {
            return true;
        }
        throw new Exception('forbidden', $why);
    }

    public static function checkSocket(string $path): void
    {
        $st = self::lstat($path, 'socket');
        if ($st === null) {
            return;
        }
        $what = self::describe($st);
        $me = posix_geteuid();
        if (($st['mode'] & self::S_IFMT) === self::S_IFLNK) {
            $why = "socket $path is a symbolic link ($what): refused; remove it";
        } elseif ($st['uid'] !== $me) {
            $why = "socket $path is $what, not yours (uid $me): refused, its owner could be "
                . 'listening; remove it';
        } elseif (($st['mode'] & 02) !== 0) {
            $why = "socket $path is $what: refused, others may replace it; remove it and "
                . 'restart its server';
        } else {
            return;
        }
        throw new Exception('forbidden', $why);
    }

    public static function defaultUrl(string $name = 'broker.ipc'): string
    {
        $d = self::runtimeDir();
        if (strlen($d) + 1 + strlen($name) > self::SOCKET_PATH_MAX) {
            throw new Exception('bad_request', "the socket path $d/$name is too long for a "
                . 'Unix socket: set a shorter SLUICE_DIR');
        }
        if (!self::checkDir($d)) {
            // Made ours now, it cannot be taken later. One that cannot be made leaves nothing
            // to reach: the connection fails as without a broker.
            $old = umask(077);
            @mkdir($d, 0700);
            umask($old);
            if (!self::checkDir($d)) {
                return "ipc://$d/$name";
            }
        }
        self::checkSocket("$d/$name");
        return "ipc://$d/$name";
    }

    public static function resolveUrl(?string $url): string
    {
        if ($url === null || $url === '') {
            $url = self::env('SLUICE_URL');
        }
        if ($url === '') {
            return self::defaultUrl();
        }
        self::splitUrls($url); // a bad address is refused now, not at the first request
        return $url;
    }

    /**
     * The addresses of "URL" or "URL,URL,..." (a cluster's brokers, README "Cluster"), each
     * checked by parseUrl; bad_request for an empty item or more than 8.
     * @return list<string>
     */
    public static function splitUrls(string $url): array
    {
        $urls = array_map('trim', explode(',', $url));
        if (count($urls) > 8 || in_array('', $urls, true)) {
            throw new Exception('bad_request', "'$url': give URL or URL,URL,... (at most 8)");
        }
        foreach ($urls as $u) {
            self::parseUrl($u);
        }
        return $urls;
    }

    /**
     * The address for stream_socket_client(): "unix://PATH" or "tcp://HOST:PORT".
     * @return array{0: string, 1: string} [kind ("ipc" or "tcp"), address]
     */
    public static function parseUrl(string $url): array
    {
        if (strncmp($url, 'ipc://', 6) === 0) {
            $path = substr($url, 6);
            if ($path === '' || strlen($path) > self::SOCKET_PATH_MAX) {
                throw new Exception('bad_request', sprintf(
                    '%s: the socket path must be 1 to %d bytes',
                    $url,
                    self::SOCKET_PATH_MAX
                ));
            }
            return ['ipc', 'unix://' . $path];
        }
        foreach (['tcp://', 'tcp4://', 'tcp6://'] as $scheme) {
            if (strncmp($url, $scheme, strlen($scheme)) !== 0) {
                continue;
            }
            $rest = substr($url, strlen($scheme));
            $colon = strrpos($rest, ':');
            $host = $colon === false ? '' : substr($rest, 0, $colon);
            $port = $colon === false ? '' : substr($rest, $colon + 1);
            $bare = $host;
            if (strlen($host) > 1 && $host[0] === '[' && substr($host, -1) === ']') {
                $bare = substr($host, 1, -1);
            }
            if (
                $bare === '' || !ctype_digit($port) || (int) $port < 1 || (int) $port > 65535
                || (strpos($bare, ':') !== false && $bare === $host)
            ) {
                throw new Exception('bad_request', "$url is not tcp://HOST:PORT");
            }
            if (strpos($bare, ':') !== false) {
                $host = "[$bare]";
            }
            return ['tcp', "tcp://$host:$port"];
        }
        throw new Exception('bad_request', "$url is not a broker address: ipc://PATH or "
            . 'tcp://HOST:PORT');
    }

    public static function resolveTokenFile(?string $tokenFile): ?string
    {
        if ($tokenFile === null || $tokenFile === '') {
            $tokenFile = self::env('SLUICE_TOKEN_FILE');
        }
        return $tokenFile === '' ? null : $tokenFile;
    }

    /**
     * The token the file holds, checked as the programs check it (PROTOCOL.md,
     * Authentication): a regular file of this user (or root), mode 0600 or stricter, one line
     * of 1 to 1,024 bytes.
     */
    public static function loadToken(string $path): string
    {
        // Opening a FIFO would wait for a writer: refused before, checked again once open.
        clearstatcache(true, $path);
        if (file_exists($path) && !is_file($path)) {
            throw new Exception('bad_request', "token file $path is not a regular file");
        }
        $f = @fopen($path, 'rb');
        if ($f === false) {
            $e = error_get_last();
            $why = $e !== null ? preg_replace('/^fopen\([^)]*\): [^:]*: /', '', $e['message']) : '';
            throw new Exception('bad_request', "cannot open token file $path: $why");
        }
        try {
            $st = fstat($f); // the file checked is the one read, even if the path changes
            if ($st === false || ($st['mode'] & self::S_IFMT) !== self::S_IFREG) {
                throw new Exception('bad_request', "token file $path is not a regular file");
            }
            $me = posix_geteuid();
            if ($st['uid'] !== $me && $st['uid'] !== 0) {
                throw new Exception('forbidden', sprintf(
                    'token file %s is owned by uid %d, not by this user (%d) or root',
                    $path,
                    $st['uid'],
                    $me
                ));
            }
            if (($st['mode'] & 077) !== 0) {
                throw new Exception('forbidden', sprintf(
                    'token file %s has mode %03o: group and others must have no access '
                    . '(chmod 600 %s)',
                    $path,
                    $st['mode'] & 0777,
                    $path
                ));
            }
            $buf = '';
            while (strlen($buf) < self::TOKEN_MAX + 3 && !feof($f)) {
                $b = fread($f, self::TOKEN_MAX + 3 - strlen($buf));
                if ($b === false) {
                    throw new Exception('io', "cannot read token file $path");
                }
                if ($b === '') {
                    break;
                }
                $buf .= $b;
            }
        } finally {
            fclose($f);
        }
        if (substr($buf, -1) === "\n") {
            $buf = substr($buf, 0, -1);
            if (substr($buf, -1) === "\r") {
                $buf = substr($buf, 0, -1);
            }
        }
        if ($buf === '') {
            throw new Exception('bad_request', "token file $path is empty");
        }
        if (strlen($buf) > self::TOKEN_MAX) {
            throw new Exception('bad_request', sprintf(
                'token file %s holds more than %d bytes',
                $path,
                self::TOKEN_MAX
            ));
        }
        if (strpbrk($buf, "\0\r\n") !== false) {
            throw new Exception('bad_request', "token file $path must hold one line without "
                . 'NUL bytes');
        }
        return $buf;
    }
}
