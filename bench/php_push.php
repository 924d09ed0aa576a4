<?php

// Push throughput and latency of the PHP client (clients/php), for bench/run.
//
//     php bench/php_push.php batch JOBS [BATCH]   one client pushes JOBS 16-byte jobs, BATCH
//                                                 per push (default 1000); "N jobs/s"
//     php bench/php_push.php single JOBS          one client, one job per push, its
//                                                 connection kept (a long-running script);
//                                                 "N jobs/s p50 X us p99 Y us" per push
//     php bench/php_push.php web JOBS             one job per push with a new client each
//                                                 time (connect, handshake, push, close), as
//                                                 a PHP web request does; the same figures
//
// One process. The broker is the environment's ($SLUICE_URL, else the local one).

declare(strict_types=1);

require __DIR__ . '/../clients/php/autoload.php';

const PAYLOAD = '0123456789abcdef';

function batch(int $jobs, int $per): void
{
    $c = new Sluice\Client(null, null, 60.0);
    $c->ping(); // connected, and the message limit known, before the clock starts
    $payloads = array_fill(0, $per, PAYLOAD);
    $t0 = hrtime(true);
    for ($left = $jobs; $left > 0; $left -= $per) {
        $c->push('phpbench', $left >= $per ? $payloads : array_slice($payloads, 0, $left));
    }
    printf("%d jobs/s\n", $jobs / ((hrtime(true) - $t0) / 1e9));
}

function single(int $jobs, bool $web): void
{
    $c = new Sluice\Client(null, null, 60.0);
    $c->ping();
    $lat = [];
    $t0 = hrtime(true);
    for ($i = 0; $i < $jobs; $i++) {
        $t = hrtime(true);
        if ($web) {
            $c = new Sluice\Client(null, null, 60.0);
        }
        $c->push('phpbench', [PAYLOAD]);
        $lat[] = intdiv(hrtime(true) - $t, 1000);
    }
    $dt = (hrtime(true) - $t0) / 1e9;
    sort($lat);
    printf(
        "%d jobs/s p50 %d us p99 %d us\n",
        $jobs / $dt,
        $lat[intdiv(count($lat), 2)],
        $lat[min(count($lat) - 1, intdiv(count($lat) * 99, 100))]
    );
}

$mode = $argv[1] ?? '';
$jobs = (int) ($argv[2] ?? 0);
if ($jobs < 1 || !in_array($mode, ['batch', 'single', 'web'], true)) {
    fwrite(STDERR, "usage: php_push.php batch JOBS [BATCH] | single JOBS | web JOBS\n");
    exit(2);
}
if ($mode === 'batch') {
    batch($jobs, max(1, (int) ($argv[3] ?? 1000)));
} else {
    single($jobs, $mode === 'web');
}
