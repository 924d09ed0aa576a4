<?php

declare(strict_types=1);

namespace Sluice;

/**
 * One job handed to a pipe: handler: its id, group, queue, attempt (1 on the first delivery)
 * and payload (the bytes pushed). Answer it once, with ack() or fail().
 */
final class Job
{
    public readonly int $id;
    public readonly string $group;
    public readonly string $queue;
    public readonly int $attempt;
    public readonly string $payload;
    public bool $answered = false;

    /** @internal */
    public function __construct(private Worker $worker, array $frame)
    {
        $this->id = $frame['id'];
        $this->group = is_string($frame['group'] ?? null) ? $frame['group'] : '';
        $this->queue = is_string($frame['queue'] ?? null) ? $frame['queue'] : '';
        $this->attempt = is_int($frame['attempt'] ?? null) ? $frame['attempt'] : 1;
        $this->payload = is_string($frame['payload'] ?? null) ? $frame['payload'] : '';
    }

    /** Done: the worker acks the job. */
    public function ack(): void
    {
        $this->answer(['id' => $this->id, 'ok' => true]);
    }

    /**
     * Failed: the worker nacks it; it is ready again after $delayMs (until its attempts are
     * used up, then it is dead). $msg is logged by the worker.
     */
    public function fail(int $delayMs = 0, ?string $msg = null): void
    {
        if ($delayMs < 0) {
            throw new \InvalidArgumentException('delayMs is a number of milliseconds, 0 or more');
        }
        $a = ['id' => $this->id, 'ok' => false, 'delay_ms' => min($delayMs, Worker::DELAY_MAX)];
        if ($msg !== null) {
            $a['msg'] = substr($msg, 0, Worker::MSG_MAX);
        }
        $this->answer($a);
    }

    private function answer(array $a): void
    {
        if ($this->answered) {
            throw new Exception('bad_request', "job {$this->id} was answered already");
        }
        $this->answered = true;
        $this->worker->send($a);
    }
}
