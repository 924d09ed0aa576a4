<?php

// A Unix socket in front of the broker, served by a child process, that forwards everything,
// except that on its first connection it reads the broker's reply to request number $lose and
// never delivers it: a reply lost after the broker stored the request. Then it closes that
// connection, or with $hold keeps it open and silent (the client times out).

declare(strict_types=1);

final class LosingProxy
{
    private int $pid;
    private string $state;

    public function __construct(
        string $path,
        private string $broker,
        private int $lose,
        private bool $hold
    ) {
        $this->state = "$path.state";
        $srv = stream_socket_server("unix://$path", $errno, $errstr);
        if ($srv === false) {
            throw new RuntimeException("proxy: $errstr");
        }
        $pid = pcntl_fork();
        if ($pid === 0) {
            $this->pid = 0; // the child: stop() is the parent's
            try {
                $this->serve($srv);
            } finally {
                posix_kill(posix_getpid(), SIGKILL); // no shutdown functions of the parent's
            }
        }
        fclose($srv);
        $this->pid = $pid;
        // A check that fails throws past stop(): the child must not outlive the check.
        register_shutdown_function([$this, 'stop']);
    }

    public function stop(): void
    {
        if ($this->pid > 0 && posix_getpid() !== $this->pid) {
            posix_kill($this->pid, SIGKILL);
            pcntl_waitpid($this->pid, $status);
            $this->pid = 0;
        }
    }

    private function get(string $key): ?string
    {
        $s = @file_get_contents("{$this->state}.$key");
        return $s === false ? null : $s;
    }

    private function put(string $key, string $value): void
    {
        file_put_contents("{$this->state}.$key.tmp", $value);
        rename("{$this->state}.$key.tmp", "{$this->state}.$key");
    }

    /** The body of the reply that was never delivered (its request id, then the msgpack). */
    public function lost(): string
    {
        $deadline = hrtime(true) + 10e9;
        while (($s = $this->get('lost')) === null && hrtime(true) < $deadline) {
            usleep(10000);
        }
        if ($s === null) {
            throw new RuntimeException('proxy: no reply was lost');
        }
        return $s;
    }

    public function conns(): int
    {
        return (int) $this->get('conns');
    }

    private static function read($s, int $n): string
    {
        $b = '';
        while (strlen($b) < $n) {
            $x = fread($s, $n - strlen($b));
            if ($x === false || $x === '') {
                throw new RuntimeException('proxy: end of file');
            }
            $b .= $x;
        }
        return $b;
    }

    private static function frame($s): string
    {
        $head = self::read($s, 9);
        return $head . self::read($s, unpack('J', substr($head, 1))[1]);
    }

    private static function writeAll($s, string $data): void
    {
        while ($data !== '') {
            $n = @fwrite($s, $data);
            if ($n === false || $n === 0) {
                throw new RuntimeException('proxy: write failed');
            }
            $data = substr($data, $n);
        }
    }

    private function serve($srv): void
    {
        $conns = 0;
        $held = [];
        $peer = []; // socket id => [socket, its peer]
        while (true) {
            $r = [$srv];
            foreach ($peer as [$s]) {
                $r[] = $s;
            }
            $w = $e = null;
            if (stream_select($r, $w, $e, null) === false) {
                continue;
            }
            foreach ($r as $s) {
                if ($s === $srv) {
                    $cl = stream_socket_accept($srv);
                    $br = stream_socket_client("unix://{$this->broker}");
                    $this->put('conns', (string) ++$conns);
                    if ($conns === 1) {
                        self::writeAll($br, self::read($cl, 8)); // the client's handshake
                        self::writeAll($cl, self::read($br, 8)); // the broker's
                        for ($i = 1; $i <= $this->lose; $i++) {
                            self::writeAll($br, self::frame($cl));
                            $reply = self::frame($br);
                            if ($i < $this->lose) {
                                self::writeAll($cl, $reply);
                            }
                        }
                        $this->put('lost', substr($reply, 9));
                        if ($this->hold) {
                            $held[] = [$cl, $br];
                        } else {
                            fclose($cl);
                            fclose($br);
                        }
                    } else {
                        $peer[(int) $cl] = [$cl, $br];
                        $peer[(int) $br] = [$br, $cl];
                    }
                    continue;
                }
                [, $other] = $peer[(int) $s];
                $x = @fread($s, 65536);
                if ($x === false || $x === '') {
                    unset($peer[(int) $s], $peer[(int) $other]);
                    fclose($s);
                    fclose($other);
                    continue;
                }
                try {
                    self::writeAll($other, $x);
                } catch (RuntimeException $ex) {
                    unset($peer[(int) $s], $peer[(int) $other]);
                    fclose($s);
                    fclose($other);
                }
            }
        }
    }
}
