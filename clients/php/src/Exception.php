<?php

declare(strict_types=1);

namespace Sluice;

/**
 * A request failed. getCode() is the broker's error code (PROTOCOL.md, "Error codes":
 * "bad_request", "unauthorized", "queue_full", "too_large", "io", ...) or one of the client's
 * own, "unreachable" (ConnectionException) and "timeout" (TimeoutException); a string, as
 * PDOException's is.
 */
class Exception extends \RuntimeException
{
    /** @var array{first_id: ?int, count: int, batches: list<array{?int, int}>, dup: int}|null */
    public ?array $pushed = null;

    /** The message without the code in front: for people, and may change. */
    public readonly string $msg;

    public function __construct(string $errCode, string $message, ?\Throwable $previous = null)
    {
        parent::__construct($errCode . ': ' . $message, 0, $previous);
        $this->code = $errCode;
        $this->msg = $message;
    }

    /** The error code alone, as getCode() gives it. */
    public function errCode(): string
    {
        return (string) $this->code;
    }
}
