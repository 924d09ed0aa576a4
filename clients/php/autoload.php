<?php

// The sluice client without Composer: require this file, then use Sluice\Client and
// Sluice\Worker. (With Composer, composer.json maps the namespace Sluice to src/.)

declare(strict_types=1);

spl_autoload_register(static function (string $class): void {
    if (strncmp($class, 'Sluice\\', 7) !== 0) {
        return;
    }
    $file = __DIR__ . '/src/' . str_replace('\\', '/', substr($class, 7)) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
