<?php

// Push jobs from a script: one job per argument, or one per line of stdin.
//
//     php examples/php/push.php bob "resize 1.jpg" "resize 2.jpg"
//     seq 1 100000 | php examples/php/push.php bob
//
// The broker is $SLUICE_URL, else the local one; $SLUICE_TOKEN_FILE gives the token. A long
// list is sent in as many requests as the broker's message limit asks.

declare(strict_types=1);

require __DIR__ . '/../../clients/php/autoload.php'; // with Composer: vendor/autoload.php

if ($argc < 2) {
    fwrite(STDERR, "usage: push.php GROUP [PAYLOAD...]   (no payload: one per line of stdin)\n");
    exit(2);
}
$group = $argv[1];
$payloads = array_slice($argv, 2);
if ($payloads === []) {
    while (($line = fgets(STDIN)) !== false) {
        $payloads[] = rtrim($line, "\n");
    }
}
try {
    $r = (new Sluice\Client())->push($group, $payloads);
} catch (Sluice\Exception $e) {
    fwrite(STDERR, 'push.php: ' . $e->getMessage() . "\n");
    exit(1);
}
printf("pushed %d job(s) to %s, first id %s\n", $r['count'], $group, $r['first_id']);
