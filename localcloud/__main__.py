"""``python -m localcloud --project P --region R --api-port 8690 --router-port 8080 --workdir DIR``.

Prints ``localcloud ready api=... router=...`` on stdout once both servers listen (devstack waits
for that line), logs to stderr, and exits cleanly on SIGTERM or SIGINT after killing every build
and revision process group it started.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from localcloud.app import serve
from localcloud.config import parse_args


def main(argv: list[str] | None = None) -> int:
    config = parse_args(argv)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s localcloud %(levelname)s %(name)s: %(message)s",
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await serve(config, stop, lambda line: print(line, flush=True))

    try:
        asyncio.run(run())
    except OSError as e:  # e.g. a port already in use
        print(f"localcloud: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
