<?php

// A pipe: handler, the PHP worker of sluice's original demo: run by a worker, it gets jobs on
// stdin and answers on stdout.
//
//     worker-pool --handler 'pipe:php examples/php/worker.php'
//
// Each job "works" by sleeping a random 100 to 3000 ms, like the default sleep:100-3000
// handler; SLUICE_DEMO_SLEEP=LO-HI (milliseconds, e.g. 0-0) changes the range. It logs each
// payload upper-cased (echo goes to the worker's log: Sluice\Worker keeps stdout for the
// answers). Two kinds of payload show the other outcomes on their first attempt, and succeed
// on the next:
//   "fail..."   the job fails; the worker nacks it and it runs again 100 ms later
//   "crash..."  the process exits mid-job; the worker nacks the job and starts a new process

declare(strict_types=1);

require __DIR__ . '/../../clients/php/autoload.php'; // with Composer: vendor/autoload.php

$range = getenv('SLUICE_DEMO_SLEEP') ?: '100-3000';
if (!preg_match('/^(\d+)-(\d+)$/', $range, $m) || (int) $m[1] > (int) $m[2]) {
    fwrite(STDERR, "worker.php: SLUICE_DEMO_SLEEP is LO-HI in milliseconds, not $range\n");
    exit(2);
}
[$lo, $hi] = [(int) $m[1], (int) $m[2]];

foreach ((new Sluice\Worker())->jobs() as $job) {
    if ($job->attempt === 1 && str_starts_with($job->payload, 'crash')) {
        echo "job {$job->id}: crashing on purpose (attempt {$job->attempt})\n";
        exit(3);
    }
    if ($job->attempt === 1 && str_starts_with($job->payload, 'fail')) {
        $job->fail(100, "asked to fail (attempt {$job->attempt})");
        continue;
    }
    usleep(random_int($lo, $hi) * 1000);
    echo "job {$job->id} ({$job->group}, attempt {$job->attempt}): ",
        strtoupper($job->payload), "\n";
    $job->ack();
}
