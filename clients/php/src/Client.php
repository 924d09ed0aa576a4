<?php

declare(strict_types=1);

namespace Sluice;

/**
 * A connection to a sluice broker over its native protocol (IPC or TCP).
 *
 * $url: ipc://PATH or tcp://HOST:PORT; default $SLUICE_URL, else the broker's socket in the
 * runtime directory (checked as the programs check it). $tokenFile: default
 * $SLUICE_TOKEN_FILE; its token goes with every request. $timeout: seconds each request may
 * take, reconnecting included. The connection is made at the first request and kept; a
 * process that forks gets a new one in the child, under its own idempotency client name.
 */
class Client
{
    public const MIN_MAX_MESSAGE = 1024; // the smallest --max-message a broker takes
    public const BATCH_BYTES = 4 << 20;  // payload bytes per push: no request holds the broker long
    public const BATCH_MAX = 1000000;    // payloads per push (PROTOCOL.md, push)
    private const RECONNECT_MIN = 0.05;  // the pause between tries, as the programs' dialer
    private const RECONNECT_MAX = 1.0;
    private const LIST_CONNECT_S = 2.0;  // with other brokers to try, one is given this long
    private const BLOB_HEAD = 5;         // the widest msgpack bin header
    private const PUSH_OPTS = ['queue' => 'is_string', 'ttr_ms' => 'is_int',
        'max_attempts' => 'is_int', 'delay_ms' => 'is_int', 'run_at_ms' => 'is_int',
        'unique' => 'is_string', 'unique_ttl_ms' => 'is_int', 'unique_hold' => 'is_string'];

    /** the broker asked now (one of $urls, or the leader a standby named) */
    public string $url;
    /** @var list<string> every broker given */
    public readonly array $urls;
    public readonly float $timeout;
    /** The idempotency key's client name: unique to this process. */
    public string $clientName = '';

    private string $kind;
    private string $addr;
    private string $token = ''; // the msgpack of "token": TOKEN, ready to append to a map
    private ?Conn $conn = null;
    private ?int $maxMessage = null;
    private int $rid;
    private int $pid = 0;
    private int $seq = 0;
    /** @var array{0: array, 1: list<string>, 2: list<int>}|null fields, payloads and seqs of a
     * push that failed unconfirmed */
    private ?array $unconfirmed = null;
    /** brokers of the list found with nobody listening, in a row */
    private int $absent = 0;

    public function __construct(
        ?string $url = null,
        ?string $tokenFile = null,
        float $timeout = 10.0
    ) {
        if (!($timeout > 0) || is_nan($timeout) || is_infinite($timeout)) {
            throw new Exception('bad_request', 'timeout must be a positive number of seconds');
        }
        $this->urls = Config::splitUrls(Config::resolveUrl($url));
        $this->useUrl($this->urls[0]);
        $this->timeout = $timeout;
        $tf = Config::resolveTokenFile($tokenFile);
        if ($tf !== null) {
            $this->token = Msgpack::str('token') . Msgpack::str(Config::loadToken($tf));
        }
        $this->rid = random_int(0, 0x7fffffff);
        $this->forkReset();
    }

    public function __destruct()
    {
        $this->close();
    }

    public function close(): void
    {
        if ($this->conn !== null) {
            $this->conn->close();
            $this->conn = null;
        }
    }

    private function forkReset(): void
    {
        $this->pid = getmypid();
        // A pid alone repeats across hosts and restarts, and the broker remembers keys for
        // 10 minutes: the name carries 64 random bits too.
        $this->clientName = sprintf('php-%d-%s', $this->pid, bin2hex(random_bytes(8)));
        $this->seq = 0;
        $this->unconfirmed = null;
    }

    private function checkFork(): void
    {
        if (getmypid() !== $this->pid) {
            $this->conn = null; // the parent's: leave it to the parent
            $this->forkReset();
        }
    }

    private function timeoutError(): TimeoutException
    {
        return new TimeoutException(sprintf(
            'no answer from the broker at %s within %g s',
            $this->url,
            $this->timeout
        ));
    }

    private function badReply(string $why): Exception
    {
        $this->close();
        return new Exception('internal', "the broker at {$this->url} broke the protocol: $why");
    }

    /** Talks to the broker at $url from now on (a new connection at the next request). */
    private function useUrl(string $url): void
    {
        [$this->kind, $this->addr] = Config::parseUrl($url);
        $this->url = $url;
        $this->conn?->close();
        $this->conn = null;
    }

    /**
     * Where to go after a standby's answer ($leader: the one it named, '' unknown) or a broker
     * out of reach: the named leader, else the next address of the list.
     */
    private function nextUrl(string $leader = ''): string
    {
        if ($leader !== '' && $leader !== $this->url) {
            return $leader;
        }
        $i = array_search($this->url, $this->urls, true);
        return $i === false ? $this->urls[0] : $this->urls[($i + 1) % count($this->urls)];
    }

    /**
     * Connects and returns null, or returns why not when trying again may help; throws when
     * there is no point. With a list, a broker out of reach sends the client on to the next
     * (a failover: the request, sent or not, goes to whichever answers).
     */
    private function connect(int $deadline, bool $sent): ?string
    {
        $many = count($this->urls) > 1;
        $until = $many ? min($deadline, hrtime(true) + (int) (self::LIST_CONNECT_S * 1e9))
            : $deadline;
        try {
            $this->conn = new Conn($this->kind, $this->addr, $until);
            $this->absent = 0;
            return null;
        } catch (ConnTimeout $e) {
            if ($many && hrtime(true) < $deadline) {
                $this->useUrl($this->nextUrl());
                return sprintf('no connection within %g s', self::LIST_CONNECT_S);
            }
            throw $this->timeoutError();
        } catch (BadPeer $e) {
            throw $this->badReply($e->getMessage());
        } catch (ConnLost $e) {
            $errno = $e->getCode();
            $resolve = $errno === 0 && stripos($e->getMessage(), 'getaddrinfo') !== false;
            $nobody = !$sent && (in_array($errno, [2, 111, 13], true) || $resolve);
            if ($many) {
                // Nobody listening at any broker of the list, in a row, and no request of ours
                // waiting at one: said at once, as for one address.
                $this->absent = $nobody ? $this->absent + 1 : 0;
                if ($this->absent >= count($this->urls)) {
                    $this->absent = 0;
                    throw new ConnectionException(sprintf(
                        'cannot connect to any broker of %s: %s',
                        implode(',', $this->urls),
                        $e->getMessage()
                    ));
                }
                $this->useUrl($this->nextUrl()); // the others may answer
                return $e->getMessage();
            }
            if ($nobody) {
                // Nobody listens there, and no request of ours can be waiting there: said at
                // once, not after the timeout. (A connection accepted and then closed, as a
                // broker at its --max-connections does, is tried again.)
                $hint = '';
                if ($errno === 2 || $errno === 111) {
                    $hint = $this->kind === 'ipc'
                        ? ' (is the broker running? start it with: broker)'
                        : ' (is the broker running and listening there?)';
                }
                throw new ConnectionException(sprintf(
                    'cannot connect to the broker at %s: %s%s',
                    $this->url,
                    $e->getMessage(),
                    $hint
                ));
            }
            return $e->getMessage();
        }
    }

    /**
     * Sends one request (its msgpack map) and returns the reply's msgpack. A request sent on
     * a connection that then dropped is sent again on a new one until the deadline (REQ's
     * rule; pushes carry their idempotency key for this).
     */
    private function roundtrip(string $req, int $deadline): string
    {
        $sent = false;  // the request may have reached a broker
        $pause = 0.0;   // the first retry at once: a connection found closed after a long idle
        while (true) {
            $why = $this->conn === null ? $this->connect($deadline, $sent) : null;
            if ($why === null) {
                $this->rid = ($this->rid + 1) & 0x7fffffff;
                $rid = pack('N', 0x80000000 | $this->rid);
                try {
                    $this->conn->send($rid . $req, $deadline);
                    $sent = true;
                    while (true) {
                        $body = $this->conn->recv($deadline);
                        if (strncmp($body, $rid, 4) === 0) {
                            return substr($body, 4);
                        }
                        // The late answer to a request given up on: not ours.
                    }
                } catch (ConnTimeout $e) {
                    // The connection may be held by a broker that stopped reading it: the
                    // next request goes on a new one, where no late reply is taken for its own.
                    $this->close();
                    throw $this->timeoutError();
                } catch (BadPeer $e) {
                    throw $this->badReply($e->getMessage());
                } catch (ConnLost $e) {
                    $this->close(); // connect again and send it again
                    $why = $e->getMessage();
                }
            }
            if (($deadline - hrtime(true)) / 1e9 <= $pause) {
                throw new ConnectionException(sprintf(
                    $sent ? 'lost the connection to the broker at %s and could not get an answer'
                        . ' within %g s (%s)' : 'could not connect to the broker at %s within %g s (%s)',
                    $this->url,
                    $this->timeout,
                    $why
                ));
            }
            usleep((int) ($pause * 1e6));
            $pause = min(max($pause * 2, self::RECONNECT_MIN), self::RECONNECT_MAX);
        }
    }

    /** The msgpack map of a request: "op", the fields (nulls left out), the token. */
    private function encode(string $op, array $fields, string $extra = '', int $extraN = 0): string
    {
        $body = '';
        $n = 1 + $extraN + ($this->token !== '' ? 1 : 0);
        foreach ($fields as $k => $v) {
            if ($v === null) {
                continue;
            }
            $k = (string) $k;
            $body .= Msgpack::str($k) . Msgpack::pack($v, $k === 'payloads' || $k === 'payload');
            $n++;
        }
        return Msgpack::mapHead($n) . "\xa2op" . Msgpack::str($op) . $body . $extra . $this->token;
    }

    private function decode(string $msg): array
    {
        $rep = @msgpack_unpack($msg);
        if (!is_array($rep) || !is_bool($rep['ok'] ?? null)) {
            throw $this->badReply('a reply that is not a msgpack map with "ok"');
        }
        return $rep;
    }

    /** The reply map of a successful request; throws Exception otherwise. */
    private function call(string $op, string $req, float $extraS = 0.0): array
    {
        if ($this->maxMessage !== null && strlen($req) + 4 > $this->maxMessage) {
            throw new Exception('too_large', sprintf(
                "a request of %d bytes is over the broker's max_message (%d)",
                strlen($req) + 4,
                $this->maxMessage
            ));
        }
        $deadline = hrtime(true) + (int) (($this->timeout + $extraS) * 1e9);
        $pause = 0.05;
        for (;;) {
            $rep = $this->decode($this->roundtrip($req, $deadline));
            // A cluster's standby: the same request goes to the leader it names (a not_leader
            // without leader_url is the router's lease, and final).
            $leader = $rep['leader_url'] ?? null;
            if ($rep['ok'] || ($rep['err'] ?? null) !== 'not_leader' || !is_string($leader)) {
                break;
            }
            // Another try needs time for a round trip (0.1 s at least); else this reply is the
            // caller's.
            $room = ($deadline - hrtime(true)) / 1e9 - 0.1;
            if ($room <= 0) {
                break;
            }
            $to = $this->nextUrl($leader);
            if ($leader === '' || $to === $this->url) {
                usleep((int) (min($pause, $room) * 1e6)); // an election: ask again a little later
                $pause = min($pause * 2, 0.5);
            }
            try {
                $this->useUrl($to);
            } catch (Exception $e) {
                break;
            }
        }
        if (!$rep['ok']) {
            $code = is_string($rep['err'] ?? null) ? $rep['err'] : 'internal';
            $msg = is_string($rep['msg'] ?? null) ? $rep['msg'] : '';
            throw new Exception($code, $msg);
        }
        if ($op === 'ping' && is_int($rep['max_message'] ?? null)) {
            $this->maxMessage = $rep['max_message'];
        }
        return $rep;
    }

    /**
     * Any operation of PROTOCOL.md: request('queue.create', ['name' => 'bulk', 'priority' =>
     * 20]). Strings are sent as msgpack str, but under "payloads" and "payload" as bin; null
     * fields are left out. Returns the reply map without "ok"; a failure throws
     * Sluice\Exception with the broker's code.
     */
    public function request(string $op, array $fields = []): array
    {
        $this->checkFork();
        $wait = $fields['wait_ms'] ?? null;
        $extra = is_int($wait) && $wait > 0 ? $wait / 1000.0 : 0.0;
        $rep = $this->call($op, $this->encode($op, $fields), $extra);
        unset($rep['ok']);
        return $rep;
    }

    public function ping(): array
    {
        return $this->request('ping');
    }

    /** The broker's stats document (PROTOCOL.md, stats): as `ctl stats --json`. */
    public function stats(): array
    {
        return $this->request('stats');
    }

    /** The largest request the broker takes (asked once, with a ping). */
    public function maxMessage(): int
    {
        if ($this->maxMessage === null) {
            $this->ping();
        }
        return $this->maxMessage ?? self::MIN_MAX_MESSAGE;
    }

    /**
     * Pushes jobs of one group: $payloads is a list of strings (bytes, sent as they are).
     * $opts: "queue" (name), "ttr_ms", "max_attempts". Returns ["first_id" => ..., "count" =>
     * ..., "queue" => ..., "batches" => [[first_id, n], ...], "dup" => jobs an earlier send
     * had stored]. A list too large for one request is split into several, in order; each
     * has its own ids ("batches"; first_id null for a resend the broker answered "stale").
     *
     * Every request carries an idempotency key (clientName, seq): one the broker already
     * stored is not stored again, so a request resent after a lost connection never doubles
     * its jobs. A failure throws Sluice\Exception; the requests sent before it are stored
     * (their jobs are in the exception's ->pushed). After a TimeoutException, a
     * ConnectionException or "io" the jobs may or may not be stored: push the same list again
     * (same group and options) and it goes under the same keys, so the broker stores each
     * job at most once and answers with its ids.
     *
     * "unique" (one payload only; with "unique_ttl_ms", "unique_hold" => "ttl"): while a job
     * holds that key (README "Unique jobs") the push stores nothing and returns count 0,
     * first_id the holder's id and "duplicate" => true.
     */
    public function push(string $group, array $payloads, array $opts = []): array
    {
        $this->checkFork();
        if ($payloads === []) {
            throw new Exception('bad_request', 'push needs at least one payload');
        }
        $payloads = array_values($payloads);
        foreach ($payloads as $i => $p) {
            if (!is_string($p)) {
                throw new Exception('bad_request', sprintf(
                    'payload %d is %s: a payload is a string',
                    $i,
                    get_debug_type($p)
                ));
            }
        }
        if (isset($opts['unique']) && count($payloads) !== 1) {
            throw new Exception('bad_request', 'a unique push is of one payload');
        }
        $fields = ['group' => $group];
        foreach ($opts as $k => $v) {
            $test = self::PUSH_OPTS[$k] ?? null;
            if ($test === null) {
                throw new Exception('bad_request', "unknown push option $k: queue, ttr_ms, "
                    . 'max_attempts, delay_ms, run_at_ms, unique, unique_ttl_ms or unique_hold');
            }
            if ($v !== null && !$test($v)) {
                throw new Exception('bad_request', "push option $k has the wrong type");
            }
            $fields[$k] = $v;
        }
        // The same push as one that failed unconfirmed goes again under the same keys, so a
        // caller that retries it cannot store its jobs twice.
        // Compared only after such a failure: a push that follows a confirmed one pays nothing.
        $u = $this->unconfirmed;
        $old = $u !== null && $u[0] === $fields && $u[1] === $payloads ? $u[2] : [];
        $this->unconfirmed = null;
        $seqs = [];
        $batches = [];
        $dup = 0;
        $queue = null;
        try {
            foreach ($this->split($fields, $payloads) as $i => $chunk) {
                $seqs[] = $old[$i] ?? ++$this->seq;
                [$first, $n, $wasDup, $q] = $this->pushOne($fields, $chunk, $seqs[$i]);
                if ($wasDup === 'duplicate') {
                    return self::result([[$first, 0]], 0, null) + ['duplicate' => true];
                }
                $batches[] = [$first, $n];
                $dup += $wasDup ? $n : 0;
                $queue ??= $q;
            }
        } catch (Exception $e) {
            if (in_array($e->getCode(), ['timeout', 'unreachable', 'io'], true)) {
                $this->unconfirmed = [$fields, $payloads, $seqs];
            }
            $e->pushed = self::result($batches, $dup, $queue);
            throw $e;
        }
        return self::result($batches, $dup, $queue) + ['duplicate' => false];
    }

    private static function result(array $batches, int $dup, ?string $queue): array
    {
        return [
            'first_id' => $batches[0][0] ?? null,
            'count' => array_sum(array_column($batches, 1)),
            'queue' => $queue,
            'batches' => $batches,
            'dup' => $dup,
        ];
    }

    /** @return array{0: ?int, 1: int, 2: bool|string, 3: ?string} ("duplicate": a unique key
     *  held by job 0) */
    private function pushOne(array $fields, array $chunk, int $seq): array
    {
        $extra = "\xa8payloads" . Msgpack::blobs($chunk) . "\xa6client"
            . Msgpack::str($this->clientName) . "\xa3seq" . Msgpack::int($seq);
        $rep = $this->call('push', $this->encode('push', $fields, $extra, 3));
        $q = is_string($rep['queue'] ?? null) ? $rep['queue'] : null;
        if (($rep['stale'] ?? false) === true) {
            return [null, count($chunk), true, $q];
        }
        if (($rep['duplicate'] ?? false) === true && is_int($rep['first_id'] ?? null)) {
            return [$rep['first_id'], 0, 'duplicate', $q];
        }
        if (!is_int($rep['first_id'] ?? null) || !is_int($rep['n'] ?? null)) {
            throw $this->badReply('a push reply without first_id and n');
        }
        return [$rep['first_id'], $rep['n'], ($rep['dup'] ?? false) === true, $q];
    }

    /** The payloads in requests that each fit the broker's max_message. */
    private function split(array $fields, array $payloads): \Generator
    {
        // Everything but the payloads: the request without them, a wider array header, the id.
        $rest = "\xa8payloads\x90\xa6client" . Msgpack::str($this->clientName) . "\xa3seq"
            . Msgpack::int(PHP_INT_MAX);
        $base = strlen($this->encode('push', $fields, $rest, 3)) + 5 + 4 + 4;
        $total = 0;
        foreach ($payloads as $p) {
            $total += strlen($p);
        }
        $count = count($payloads);
        if ($base + $total + self::BLOB_HEAD * $count <= self::MIN_MAX_MESSAGE) {
            yield $payloads; // fits any broker: no need to ask
            return;
        }
        $limit = $this->maxMessage() - $base;
        if ($total <= self::BATCH_BYTES && $count <= self::BATCH_MAX
            && $total + self::BLOB_HEAD * $count <= $limit) {
            yield $payloads;
            return;
        }
        $start = 0;
        $size = 0;
        $nbytes = 0;
        foreach ($payloads as $i => $p) {
            $n = strlen($p);
            if ($n + self::BLOB_HEAD > $limit) {
                throw new Exception('too_large', sprintf(
                    'payload %d has %d bytes: over what a request to this broker can carry '
                    . '(max_message %d)',
                    $i,
                    $n,
                    $this->maxMessage
                ));
            }
            if ($i > $start && ($i - $start === self::BATCH_MAX || $nbytes + $n > self::BATCH_BYTES
                || $size + $n + self::BLOB_HEAD > $limit)) {
                yield array_slice($payloads, $start, $i - $start);
                $start = $i;
                $size = 0;
                $nbytes = 0;
            }
            $size += $n + self::BLOB_HEAD;
            $nbytes += $n;
        }
        yield array_slice($payloads, $start);
    }
}
