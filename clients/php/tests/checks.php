<?php

// Checks of the PHP client (clients/php) against a real broker, run one at a time by
// tests/integ/t_client_php.sh:  php checks.php CHECK [ARG...]. Exit 0: the check passed;
// anything else, with the reason on stderr, failed. The broker is the environment's
// (SLUICE_DIR, SLUICE_URL, SLUICE_TOKEN_FILE), as a user's program would find it.

declare(strict_types=1);

require __DIR__ . '/../autoload.php';
require __DIR__ . '/LosingProxy.php';

use Sluice\Client;
use Sluice\ConnectionException as Unreachable;
use Sluice\Exception as SluiceError;
use Sluice\TimeoutException as Timeout;

function expect(bool $cond, string $what): void
{
    if (!$cond) {
        throw new AssertionError($what);
    }
}

function expect_error(callable $fn, string $class, string $code, ?float $within = null): SluiceError
{
    $t = hrtime(true);
    try {
        $fn();
    } catch (Sluice\Exception $e) {
        $took = (hrtime(true) - $t) / 1e9;
        expect($e instanceof $class, sprintf('threw %s (%s), want %s', get_class($e),
            $e->getMessage(), $class));
        expect($e->getCode() === $code, sprintf('code %s (%s), want %s', $e->getCode(),
            $e->getMessage(), $code));
        if ($within !== null) {
            expect($took <= $within, sprintf('thrown after %.2f s, want within %.2f s', $took,
                $within));
        }
        printf("threw %s: %s (%.3f s)\n", get_class($e), $e->getMessage(), $took);
        return $e;
    }
    throw new AssertionError("no exception thrown, want $class $code");
}

function group_stats(Client $c, string $group): ?array
{
    foreach ($c->stats()['groups'] as $g) {
        if ($g['name'] === $group) {
            return $g;
        }
    }
    return null;
}

/** [id, payload] of the group's ready jobs, in the order the broker hands them out. */
function reserve_all(Client $c, string $group, int $want): array
{
    $got = [];
    while (count($got) < $want) {
        $jobs = $c->request('reserve', ['worker' => 'checker', 'max' => 10000])['jobs'];
        expect($jobs !== [], sprintf('only %d of %d jobs could be reserved', count($got), $want));
        foreach ($jobs as $j) {
            if ($j['group'] === $group) {
                $got[] = [$j['id'], $j['payload']];
            }
        }
    }
    $c->request('ack', ['ids' => array_column($got, 0), 'worker' => 'checker']);
    return $got;
}

function payloads(int $n, int $size): array
{
    $p = [];
    for ($i = 0; $i < $n; $i++) {
        $p[] = sprintf("%0{$size}d", $i);
    }
    return $p;
}

// --- push ------------------------------------------------------------------------------------

function check_push(): void
{
    $c = new Client(null, null, 5);
    $r = $c->push('php-one', ['hello']);
    $first = $r['first_id'];
    expect($r['count'] === 1 && is_int($first) && $first > 0 && $r['queue'] === 'default',
        'push gave ' . json_encode($r));
    // Bytes that are no UTF-8: sent as bin, taken and handed back unchanged.
    $r = $c->push('php-one', ["\x00bin\xff", "caf\xc3\xa9"], ['ttr_ms' => 5000,
        'max_attempts' => 2]);
    expect($r['first_id'] === $first + 1 && $r['count'] === 2 && $r['batches'] === [[$first + 1, 2]]
        && $r['dup'] === 0, 'second push gave ' . json_encode($r));
    $g = group_stats($c, 'php-one');
    expect($g !== null && $g['count'] === 3, 'stats shows ' . json_encode($g));
    $got = array_column(reserve_all($c, 'php-one', 3), 1);
    expect($got === ['hello', "\x00bin\xff", "caf\xc3\xa9"], 'payloads ' . bin2hex(implode('|',
        $got)));
    expect_error(fn () => $c->push('php-one', ['x'], ['queue' => 'nope']), SluiceError::class,
        'not_found', 5);
    expect_error(fn () => $c->push('bad name!', ['x']), SluiceError::class, 'bad_request', 5);
    expect_error(fn () => $c->push('php-one', ['x'], ['ttl' => 1]), SluiceError::class,
        'bad_request');
    expect_error(fn () => $c->push('php-one', []), SluiceError::class, 'bad_request');
    // Delayed: counted as delayed in its group, not ready.
    $c->push('php-later', ['soon'], ['delay_ms' => 60000]);
    $c->push('php-later', ['then'], ['run_at_ms' => (int) (microtime(true) * 1000) + 60000]);
    $g = group_stats($c, 'php-later');
    expect($g !== null && $g['delayed'] === 2 && $g['ready'] === 0, 'delayed push: '
        . json_encode($g));
    // Unique: the second push with the key stores nothing and names the holder.
    $u1 = $c->push('php-uniq', ['once'], ['unique' => 'php-key-1']);
    $u2 = $c->push('php-uniq', ['twice'], ['unique' => 'php-key-1']);
    expect($u1['count'] === 1 && $u1['duplicate'] === false, 'unique push: ' . json_encode($u1));
    expect($u2['count'] === 0 && $u2['duplicate'] === true && $u2['first_id'] === $u1['first_id'],
        'second unique push: ' . json_encode($u2));
    expect_error(fn () => $c->push('php-uniq', ['a', 'b'], ['unique' => 'k']), SluiceError::class,
        'bad_request');
}

function check_encoding(): void
{
    // Payloads are msgpack bin, names and the other strings str, as PROTOCOL.md's example.
    $m = Sluice\Msgpack::map(['op' => 'push', 'group' => 'bob', 'payloads' => ['hello'],
        'seq' => 1]);
    expect(bin2hex($m) === '84a26f70a470757368a567726f7570a3626f62'
        . 'a87061796c6f61647391c40568656c6c6fa373657101',
        'encoded ' . bin2hex($m));
    foreach ([0, 127, 128, 255, 256, 65535, 65536, 0xffffffff, 0x100000000, PHP_INT_MAX, -1, -32,
        -33] as $v) {
        expect(msgpack_unpack(Sluice\Msgpack::int($v)) === $v, "int $v");
    }
    foreach ([0, 31, 32, 255, 256, 65535, 65536] as $n) {
        $s = str_repeat('a', $n);
        expect(msgpack_unpack(Sluice\Msgpack::str($s)) === $s, "str of $n");
        expect(msgpack_unpack(Sluice\Msgpack::bin($s)) === $s, "bin of $n");
    }
    $blobs = Sluice\Msgpack::blobs(array_fill(0, 70000, 'xy'));
    expect(msgpack_unpack($blobs) === array_fill(0, 70000, 'xy'), 'an array of 70,000 bins');
}

function check_batch(string $n, string $size): void
{
    $c = new Client(null, null, 30);
    $p = payloads((int) $n, (int) $size);
    $r = $c->push('php-batch', $p);
    printf("max_message %d: %d payloads of %d bytes in %d request(s)\n", $c->maxMessage(), $n,
        $size, count($r['batches']));
    expect($r['count'] === (int) $n, "count {$r['count']}, want $n");
    if ((int) $n * ((int) $size + 2) > $c->maxMessage()) {
        expect(count($r['batches']) > 1, 'a list over max_message went in one request');
    }
    $ids = [];
    foreach ($r['batches'] as [$first, $k]) {
        expect(is_int($first) && $k > 0, 'batch ' . json_encode([$first, $k]));
        $ids = array_merge($ids, range($first, $first + $k - 1));
    }
    $got = reserve_all($c, 'php-batch', (int) $n);
    expect(array_column($got, 1) === $p, 'payloads out of order or changed');
    expect(array_column($got, 0) === $ids, "ids are not the batches' ranges");
}

function check_too_large(): void
{
    $c = new Client(null, null, 5);
    expect_error(fn () => $c->push('php-big', [str_repeat('x', $c->maxMessage() + 1)]),
        SluiceError::class, 'too_large', 5);
    $c->ping(); // the connection is still good: nothing was sent
}

function check_dup_key(): void
{
    $c = new Client(null, null, 5);
    $f = ['group' => 'php-dup', 'payloads' => ['a', 'b'], 'client' => 'php-dup-key', 'seq' => 7];
    $a = $c->request('push', $f);
    $b = $c->request('push', $f);
    expect(!$a['dup'] && $b['dup'], 'dup flags ' . json_encode([$a, $b]));
    expect([$a['first_id'], $a['n']] === [$b['first_id'], $b['n']], json_encode([$a, $b]));
    expect(group_stats($c, 'php-dup')['count'] === 2, 'the resend was stored again');
}

function check_lost_reply(): void
{
    $d = getenv('SLUICE_DIR');
    $proxy = new LosingProxy("$d/lossy.ipc", "$d/broker.ipc", 1, false);
    $c = new Client("ipc://$d/lossy.ipc", null, 10);
    $r = $c->push('php-lost', ['one', 'two', 'three']);
    $lost = msgpack_unpack(substr($proxy->lost(), 4));
    $conns = $proxy->conns();
    printf("reply lost with the first connection: %s; after the resend: %s, connections %d\n",
        json_encode($lost), json_encode($r), $conns);
    expect($conns === 2, "$conns connections, want 2 (one lost, one resend)");
    expect($lost['ok'] && !$lost['dup'], 'the lost reply was ' . json_encode($lost));
    expect($r['first_id'] === $lost['first_id'] && $r['count'] === 3 && $r['dup'] === 3,
        "the resend's answer is not the lost reply's ids: " . json_encode($r));
    expect(group_stats($c, 'php-lost')['count'] === 3, 'jobs stored twice');
    $r2 = $c->push('php-lost', ['four']); // the next push has a key of its own
    expect($r2['dup'] === 0 && $r2['first_id'] > $lost['first_id'] + 2,
        'next push ' . json_encode($r2));
    $proxy->stop();
}

function check_timeout_retry(): void
{
    // A split push whose second request's reply never comes: TimeoutException, with the first
    // request's jobs in ->pushed; pushing the same list again stores each job once, answering
    // the first two requests with their original ids.
    $d = getenv('SLUICE_DIR');
    // Requests on the first connection: the ping that learns max_message, then the pushes.
    $proxy = new LosingProxy("$d/silent-reply.ipc", "$d/broker.ipc", 3, true);
    // 2 s: the requests before the lost reply must not time out on a loaded machine.
    $c = new Client("ipc://$d/silent-reply.ipc", null, 2);
    $p = payloads(1500, 100);
    $e = expect_error(fn () => $c->push('php-retry', $p), Timeout::class, 'timeout', 5);
    $lost = msgpack_unpack(substr($proxy->lost(), 4));
    expect($lost['ok'] && count($e->pushed['batches']) === 1, 'pushed before the timeout: '
        . json_encode($e->pushed) . ', lost reply ' . json_encode($lost));
    $r = $c->push('php-retry', $p);
    printf("before the timeout %s, lost %s; the retry: %s\n", json_encode($e->pushed['batches']),
        json_encode($lost), json_encode($r['batches']));
    expect(count($r['batches']) >= 3, 'batches ' . json_encode($r['batches']));
    expect($r['batches'][0] === $e->pushed['batches'][0],
        'first request: ' . json_encode($r['batches'][0]));
    expect($r['batches'][1] === [$lost['first_id'], $lost['n']],
        'second request: ' . json_encode($r['batches'][1]));
    expect($r['dup'] === $e->pushed['count'] + $lost['n'] && $r['count'] === 1500,
        "dup {$r['dup']} count {$r['count']}");
    expect(group_stats($c, 'php-retry')['count'] === 1500, 'jobs stored twice');
    expect($c->push('php-retry', [$p[0]])['dup'] === 0, 'another push was taken for a retry');
    $proxy->stop();
}

// --- Sluice\Worker's frames ------------------------------------------------------------------

function check_worker_frames(): void
{
    // The pipe: frames both ways: ack, fail with its delay capped, a job left unanswered
    // acked when the next is asked for, a second answer refused, end of file.
    $in = fopen('php://memory', 'w+b');
    foreach ([1, 2, 3] as $i) {
        $body = Sluice\Msgpack::map(['id' => $i, 'group' => 'g', 'queue' => 'q', 'attempt' => $i,
            'payload' => "p$i\xff", 'future' => [1]]);
        fwrite($in, pack('N', strlen($body)) . $body);
    }
    rewind($in);
    $out = fopen('php://memory', 'w+b');
    $w = new Sluice\Worker($in, $out);
    $seen = [];
    foreach ($w->jobs() as $job) {
        $seen[] = [$job->id, $job->group, $job->queue, $job->attempt, $job->payload];
        if ($job->id === 1) {
            $job->ack();
            expect_error(fn () => $job->ack(), SluiceError::class, 'bad_request');
        } elseif ($job->id === 2) {
            $job->fail(10 ** 9, str_repeat('x', 5000));
        }
    }
    $want = [];
    foreach ([1, 2, 3] as $i) {
        $want[] = [$i, 'g', 'q', $i, "p$i\xff"];
    }
    expect($seen === $want, 'jobs ' . json_encode(array_map(fn ($s) => bin2hex($s[4]), $seen)));
    rewind($out);
    $b = stream_get_contents($out);
    $answers = [];
    while ($b !== '') {
        $n = unpack('N', $b)[1];
        $answers[] = msgpack_unpack(substr($b, 4, $n));
        $b = substr($b, 4 + $n);
    }
    expect($answers[0] === ['id' => 1, 'ok' => true], 'ack ' . json_encode($answers[0]));
    expect($answers[1]['ok'] === false && $answers[1]['delay_ms'] === 86400000
        && strlen($answers[1]['msg']) === 4096, 'fail ' . json_encode($answers[1]));
    expect(count($answers) === 3 && $answers[2] === ['id' => 3, 'ok' => true],
        'the unanswered job: ' . json_encode(array_slice($answers, 2)));
}

// --- token -----------------------------------------------------------------------------------

function check_token(string $path): void
{
    $c = new Client(null, $path, 5);
    expect($c->push('php-token', ['x'])['count'] === 1, 'push with the token');
}

function check_wrong_token(string $path, string $good): void
{
    $c = new Client(null, $path === '' ? null : $path, 5);
    $e = expect_error(fn () => $c->push('php-token-wrong', ['x']), SluiceError::class,
        'unauthorized', 5);
    expect(str_contains($e->getMessage(), 'token'),
        'the message does not speak of the token: ' . $e->getMessage());
    expect(group_stats(new Client(null, $good, 5), 'php-token-wrong') === null,
        'a refused push stored something');
}

function check_token_file_refused(string $path): void
{
    $e = expect_error(fn () => new Client(null, $path), SluiceError::class, 'forbidden');
    expect(str_contains($e->getMessage(), 'chmod 600'), 'no hint: ' . $e->getMessage());
}

// --- the default address ---------------------------------------------------------------------

function check_default_dir(): void
{
    // A runtime directory open to others is refused, not used; XDG_RUNTIME_DIR/sluice is made
    // 0700; SLUICE_URL wins; a bad address is refused at once.
    $d = getenv('SLUICE_DIR') . '/opendir';
    mkdir($d, 0700);
    chmod($d, 0755);
    putenv("SLUICE_DIR=$d");
    $e = expect_error(fn () => new Client(), SluiceError::class, 'forbidden');
    expect(str_contains($e->getMessage(), 'chmod 700'), 'no hint: ' . $e->getMessage());
    chmod($d, 0750); // a group may read it: refused too
    clearstatcache();
    expect_error(fn () => new Client(), SluiceError::class, 'forbidden');
    chmod($d, 0710); // shared with a group by --socket-group: search only, taken
    clearstatcache();
    expect((new Client())->url === "ipc://$d/broker.ipc", 'a 0710 directory refused');
    putenv('SLUICE_DIR');
    putenv("XDG_RUNTIME_DIR=$d");
    chmod($d, 0700);
    $c = new Client();
    expect($c->url === "ipc://$d/sluice/broker.ipc", "url {$c->url}");
    clearstatcache();
    expect((fileperms("$d/sluice") & 0777) === 0700, 'runtime directory not made 0700');
    symlink("$d/sluice", "$d/link");
    putenv("SLUICE_DIR=$d/link");
    $e = expect_error(fn () => new Client(), SluiceError::class, 'forbidden');
    expect(str_contains($e->getMessage(), 'symbolic link'), 'not said: ' . $e->getMessage());
    putenv('SLUICE_URL=tcp://127.0.0.1:1');
    expect((new Client())->url === 'tcp://127.0.0.1:1', 'SLUICE_URL not used');
    expect_error(fn () => new Client('http://x'), SluiceError::class, 'bad_request');
    expect_error(fn () => new Client('tcp://host'), SluiceError::class, 'bad_request');
    expect((new Client('tcp://[::1]:7450'))->url === 'tcp://[::1]:7450', 'IPv6 address refused');
}

// --- broker down -----------------------------------------------------------------------------

function check_down(string $url, string $within): void
{
    $c = new Client($url === '' ? null : $url, null, 5);
    expect_error(fn () => $c->ping(), Unreachable::class, 'unreachable', (float) $within);
    $e = expect_error(fn () => $c->push('g', ['x']), Unreachable::class, 'unreachable',
        (float) $within);
    expect(str_contains($e->getMessage(), 'is the broker running'), 'no hint: ' . $e->getMessage());
}

function check_silent(string $path): void
{
    // A socket that accepts and never answers: TimeoutException after the client's timeout.
    $srv = stream_socket_server("unix://$path");
    $c = new Client("ipc://$path", null, 1);
    expect_error(fn () => $c->ping(), Timeout::class, 'timeout', 3);
    fclose($srv);
}

function check_dies(string $pid): void
{
    // A client connected to a broker that then stops: the next request fails at once.
    $c = new Client(null, null, 10);
    $c->push('php-dies', ['x']);
    posix_kill((int) $pid, SIGTERM);
    $deadline = hrtime(true) + 10e9;
    while (file_exists("/proc/$pid") && hrtime(true) < $deadline) {
        usleep(20000);
    }
    expect_error(fn () => $c->push('php-dies', ['y']), Unreachable::class, 'unreachable', 2);
}

function check_full(): void
{
    // A broker at its --max-connections (1) closes a new connection as it comes: the client
    // tries again within its timeout, and gets in once the connection ahead of it closes.
    $path = getenv('SLUICE_DIR') . '/broker.ipc';
    // The hog holds the one connection once a ping on it is answered: a connection accepted
    // while the broker still counts one that just closed (the harness's start check) is closed
    // again, and then the hog tries anew.
    $ping = "\x01" . pack('J', 13) . "\x80\x00\x00\x01" . "\x81\xa2op\xa4ping";
    $deadline = microtime(true) + 10;
    for (;;) {
        $hog = @stream_socket_client("unix://$path");
        if ($hog !== false && fwrite($hog, Sluice\Conn::HELLO_REQ) !== false
            && fread($hog, 8) === Sluice\Conn::HELLO_REP && fwrite($hog, $ping) !== false
            && strlen((string) fread($hog, 9)) === 9) {
            break;
        }
        expect(microtime(true) < $deadline, 'the broker never kept a connection');
        usleep(50000);
    }
    $e = expect_error(fn () => (new Client(null, null, 1))->ping(), Unreachable::class,
        'unreachable', 3);
    expect(str_contains($e->getMessage(), 'within 1 s'),
        'not tried for the whole timeout: ' . $e->getMessage());
    $pid = pcntl_fork();
    if ($pid === 0) {
        fclose($hog); // the parent's to close
        usleep(500000); // the connection ahead closes while the client is trying
        posix_kill(posix_getppid(), SIGUSR1);
        exit(0);
    }
    pcntl_async_signals(true);
    pcntl_signal(SIGUSR1, function () use (&$hog) {
        fclose($hog);
    });
    $t = hrtime(true);
    (new Client(null, null, 10))->ping();
    printf("served %.2f s after asking, once the first connection closed\n",
        (hrtime(true) - $t) / 1e9);
    pcntl_waitpid($pid, $status);
}

// --- tcp -------------------------------------------------------------------------------------

function check_tcp(string $url): void
{
    $c = new Client($url, null, 5);
    expect($c->url === $url, "url {$c->url}");
    $p = [];
    for ($i = 0; $i < 5000; $i++) {
        $p[] = "t$i";
    }
    $r = $c->push('php-tcp', $p);
    expect($r['count'] === 5000 && count($r['batches']) > 1, 'push ' . json_encode($r['batches']));
    $g = group_stats($c, 'php-tcp');
    expect($g['count'] === 5000, 'stats ' . json_encode($g));
}

// --- lists of brokers (a cluster), against fake standbys (tests/integ/py/fake_standby.py) ------

function check_list_parse(): void
{
    // A list: spaces around items dropped; an empty item, more than 8 or a bad address
    // refused before anything is sent.
    $c = new Client(' ipc:///x/a.ipc , tcp://127.0.0.1:1 ', null, 1);
    expect($c->urls === ['ipc:///x/a.ipc', 'tcp://127.0.0.1:1'], 'urls ' . json_encode($c->urls));
    expect($c->url === 'ipc:///x/a.ipc', "url {$c->url}");
    $bad = [',', 'ipc:///x/a.ipc,', ',ipc:///x/a.ipc', 'ipc:///x/a.ipc,,ipc:///x/b.ipc',
        'ipc:///x/a.ipc, ,ipc:///x/b.ipc', implode(',', array_fill(0, 9, 'ipc:///x/a.ipc')),
        'ipc:///x/a.ipc,http://y'];
    foreach ($bad as $b) {
        expect_error(fn () => new Client($b), SluiceError::class, 'bad_request');
    }
}

function check_follow(string $standby, string $leader): void
{
    // A standby first in the list names the leader: the push is done there.
    $c = new Client("$standby,$leader", null, 5);
    $r = $c->push('php-follow', ['a']);
    expect($r['count'] === 1, 'push ' . json_encode($r));
    expect($c->url === $leader, "url {$c->url}, want $leader");
    $c = new Client($standby, null, 5); // the leader it names need not be in the list
    $r = $c->push('php-follow', ['b']);
    expect($r['count'] === 1 && $c->url === $leader, "push, url {$c->url}");
    $g = group_stats(new Client($leader, null, 5), 'php-follow');
    expect($g !== null && $g['pushed'] === 2, 'stats ' . json_encode($g));
}

function check_no_leader(string $u1, string $u2): void
{
    // Every broker answers leader_url "": not_leader once the timeout is spent.
    $c = new Client("$u1,$u2", null, 1.5);
    $t = hrtime(true);
    expect_error(fn () => $c->push('php-follow', ['x']), SluiceError::class, 'not_leader', 4);
    $took = (hrtime(true) - $t) / 1e9;
    expect($took >= 1.0, sprintf('gave up after %.2f s of 1.5', $took));
}

function check_lease(string $lease, string $leader): void
{
    // A not_leader without leader_url (the router's lease) is final: thrown at once, no other
    // broker asked.
    $c = new Client("$lease,$leader", null, 5);
    expect_error(fn () => $c->push('php-lease', ['x']), SluiceError::class, 'not_leader', 1);
    expect($c->url === $lease, "moved to {$c->url}");
    expect(group_stats(new Client($leader, null, 5), 'php-lease') === null,
        'the push reached the next broker');
}

function check_list_down(string $leader, string $tcpFree, string $silent, string $vanish): void
{
    // Brokers of the list out of reach are passed over, also one that dies holding the
    // request ($vanish); none at all: ConnectionException at once when nobody listens anywhere.
    $d = getenv('SLUICE_DIR');
    foreach (["ipc://$d/nobody.ipc", $tcpFree, "ipc://$silent", $vanish] as $first) {
        $c = new Client("$first,$leader", null, 8);
        $t = hrtime(true);
        $r = $c->push('php-down', ['x']);
        $took = (hrtime(true) - $t) / 1e9;
        expect($r['count'] === 1 && $c->url === $leader, "$first first: url {$c->url}");
        expect($took < 5, sprintf('%s first: took %.2f s', $first, $took));
    }
    $c = new Client("ipc://$d/nobody.ipc,$tcpFree", null, 5);
    expect_error(fn () => $c->ping(), Unreachable::class, 'unreachable', 1);
}

$fn = 'check_' . ($argv[1] ?? '');
if (!isset($argv[1]) || !function_exists($fn)) {
    fwrite(STDERR, "usage: checks.php CHECK [ARG...]\n");
    exit(2);
}
try {
    $fn(...array_slice($argv, 2));
} catch (Throwable $e) {
    fwrite(STDERR, get_class($e) . ': ' . $e->getMessage() . "\n");
    exit(1);
}
