"""The ``samexport`` console script: start-up that a Ctrl-C or SIGTERM ends in one sentence.

Importing the command line pulls in click, numpy and more; a signal that lands meanwhile would
otherwise print a traceback. The signal handlers go in first, then everything else.
"""

from __future__ import annotations

import sys


def run() -> None:
    from . import interrupts

    interrupts.reset()
    interrupts.install()
    try:
        from .cli import main

        main()
    except KeyboardInterrupt as exc:  # before a command started, or in click's own parsing
        print(f"error: {interrupts.describe(exc)}; nothing was written", file=sys.stderr)
        interrupts.finish(interrupts.exit_status(exc))
    except SystemExit as exc:  # every command ends here, click's standalone mode included
        interrupts.finish(exc.code)


if __name__ == "__main__":  # python -m samexport.console
    run()
