<?php

declare(strict_types=1);

namespace Sluice;

/**
 * The peer broke the protocol: the connection cannot be used any more.
 *
 * @internal
 */
final class BadPeer extends \RuntimeException
{
}
