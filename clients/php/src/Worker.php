<?php

declare(strict_types=1);

namespace Sluice;

/**
 * The handler side of `worker --handler pipe:CMD` (PROTOCOL.md, "Pipe handlers"): the
 * worker writes one job frame (a 4-byte big-endian length and a msgpack map) to the
 * handler's stdin and reads the answer frame from its stdout, one job at a time.
 *
 *     foreach ((new Sluice\Worker())->jobs() as $job) {
 *         handle($job->payload);
 *         $job->ack();                 // or $job->fail(1000, 'why');
 *     }
 *
 * A job the loop's body leaves unanswered is acked when the next one is asked for (as an
 * exec: handler's exit 0 is); an exception that escapes the loop ends the process and the
 * worker nacks the job. The loop ends when the worker closes stdin (it drains).
 *
 * Anything else written to stdout would break the framing: by default the answers go to
 * STDOUT and PHP's output (echo, print) is sent to STDERR, the worker's log.
 */
final class Worker
{
    public const FRAME_MAX = 1 << 31; // a job frame longer than this is not from a worker
    public const DELAY_MAX = 86400000; // PROTOCOL.md: delay_ms 0 to 86,400,000
    public const MSG_MAX = 4096;      // the worker logs at most this much of msg

    /** @var resource */
    private $in;
    /** @var resource */
    private $out;
    private ?Job $job = null;

    /**
     * @param resource|null $in  the job frames (default STDIN)
     * @param resource|null $out the answers (default STDOUT; PHP's output goes to STDERR)
     */
    public function __construct($in = null, $out = null)
    {
        if ($out === null) {
            $stderr = fopen('php://stderr', 'wb');
            ob_start(static function (string $buf) use ($stderr): string {
                fwrite($stderr, $buf);
                return '';
            }, 1);
        }
        $this->in = $in ?? STDIN;
        $this->out = $out ?? STDOUT;
    }

    private function read(int $n): ?string
    {
        $buf = '';
        while (strlen($buf) < $n) {
            $b = fread($this->in, $n - strlen($buf));
            if ($b === false || $b === '') {
                if ($buf !== '') {
                    throw new Exception('bad_request', 'a job frame cut short by end of file');
                }
                return null;
            }
            $buf .= $b;
        }
        return $buf;
    }

    /** @internal */
    public function send(array $a): void
    {
        $body = Msgpack::map($a);
        $data = pack('N', strlen($body)) . $body;
        while ($data !== '') {
            $n = fwrite($this->out, $data);
            if ($n === false || $n === 0) {
                throw new Exception('io', 'cannot write the answer: the worker went away');
            }
            $data = substr($data, $n);
        }
        fflush($this->out);
    }

    /** The next job, or null at end of file (the worker is done with us). */
    public function next(): ?Job
    {
        if ($this->job !== null && !$this->job->answered) {
            $this->job->ack();
        }
        $this->job = null;
        $head = $this->read(4);
        if ($head === null) {
            return null;
        }
        $n = unpack('N', $head)[1];
        if ($n > self::FRAME_MAX) {
            throw new Exception('bad_request', "a job frame of $n bytes");
        }
        $body = $n > 0 ? $this->read($n) : '';
        if ($body === null) {
            throw new Exception('bad_request', 'a job frame cut short by end of file');
        }
        $frame = @msgpack_unpack($body);
        if (!is_array($frame) || !is_int($frame['id'] ?? null)) {
            throw new Exception('bad_request', 'a job frame that is not a map with an id');
        }
        return $this->job = new Job($this, $frame);
    }

    /** @return \Generator<int, Job> every job until the worker closes stdin */
    public function jobs(): \Generator
    {
        while (($job = $this->next()) !== null) {
            yield $job->id => $job;
        }
    }
}
