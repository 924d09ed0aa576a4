<?php

// A web-style producer: every HTTP request pushes one job, as a web application would.
// A router script for PHP's built-in server (or the body of a PHP-FPM endpoint):
//
//     php -S 127.0.0.1:8080 examples/php/producer.php &
//     curl -d 'resize 1.jpg' http://127.0.0.1:8080/jobs/bob
//     {"first_id":1,"count":1,"queue":"default"}
//
// The broker is $SLUICE_URL, else the local one; $SLUICE_TOKEN_FILE gives the token. Under
// PHP-FPM running as another user (www-data), start the broker with --socket-mode 0660
// --socket-group www-data and set SLUICE_URL to its socket, or use a TCP listener with a
// token (README, Security).

declare(strict_types=1);

require __DIR__ . '/../../clients/php/autoload.php'; // with Composer: vendor/autoload.php

function reply(int $status, array $doc): void
{
    http_response_code($status);
    header('Content-Type: application/json');
    echo json_encode($doc, JSON_UNESCAPED_SLASHES), "\n";
}

$path = parse_url($_SERVER['REQUEST_URI'] ?? '/', PHP_URL_PATH) ?: '/';
if (!preg_match('#^/jobs/([^/]+)$#', $path, $m)) {
    reply(404, ['err' => 'not_found', 'msg' => 'POST /jobs/GROUP']);
    return;
}
if (($_SERVER['REQUEST_METHOD'] ?? '') !== 'POST') {
    header('Allow: POST');
    reply(405, ['err' => 'bad_request', 'msg' => 'POST /jobs/GROUP']);
    return;
}
try {
    // One connection per request: PHP keeps nothing between requests.
    $client = new Sluice\Client(null, null, 5.0);
    $r = $client->push(urldecode($m[1]), [file_get_contents('php://input')]);
} catch (Sluice\Exception $e) {
    $status = ['bad_request' => 400, 'unauthorized' => 401, 'too_large' => 413,
        'queue_full' => 429][$e->getCode()] ?? 503;
    reply($status, ['err' => $e->getCode(), 'msg' => $e->msg]);
    return;
}
reply(200, ['first_id' => $r['first_id'], 'count' => $r['count'], 'queue' => $r['queue']]);
