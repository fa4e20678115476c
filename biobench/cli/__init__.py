"""The ``biobench`` command line: the command group, error handling, and its subcommands.

Exit status: 0 on success; 2 on bad usage or bad input (one line, no traceback, nothing written;
click's usage errors too); 1 when a run fails after it started (the message says what was kept,
a full disk included).
"""

from __future__ import annotations

# The subcommands register themselves on ``cli`` when imported.
from biobench.cli import boards, catalogue, checks, data, run  # noqa: F401
from biobench.cli.base import (
    CONTEXT,
    TRACEBACK_ENV,
    BiobenchGroup,
    cli,
    main,
)

__all__ = ["CONTEXT", "TRACEBACK_ENV", "BiobenchGroup", "cli", "main"]
