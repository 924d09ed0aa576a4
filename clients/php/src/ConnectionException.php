<?php

declare(strict_types=1);

namespace Sluice;

/** No broker could be reached at the address (not running, refused, connection lost). */
class ConnectionException extends Exception
{
    public function __construct(string $message)
    {
        parent::__construct('unreachable', $message);
    }
}
