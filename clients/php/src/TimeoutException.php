<?php

declare(strict_types=1);

namespace Sluice;

/** The broker did not answer within the client's timeout. */
class TimeoutException extends Exception
{
    public function __construct(string $message)
    {
        parent::__construct('timeout', $message);
    }
}
