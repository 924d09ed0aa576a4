<?php

declare(strict_types=1);

namespace Sluice;

/**
 * The connection failed or closed: connect again and send the request again.
 *
 * @internal
 */
final class ConnLost extends \RuntimeException
{
}
