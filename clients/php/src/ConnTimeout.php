<?php

declare(strict_types=1);

namespace Sluice;

/**
 * The deadline passed.
 *
 * @internal
 */
final class ConnTimeout extends \RuntimeException
{
}
