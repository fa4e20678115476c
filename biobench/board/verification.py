"""Verification of a board: every record's numbers recomputed from its score files, rows marked.

A record's *status* (:func:`record_status`) looks only at the checks that decide whether a
published number is right: the metric values the board shows, the test split, and the score
files themselves (none missing unless the record says it was not kept, none extra, none that is
not a regular file, both copies of a file holding the same trials).  A row is ``differs`` when
any of its records differs, else ``ok`` only when **every** number it shows was recomputed and
agrees, on every record, else ``cannot check`` (:func:`verify_board`).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from biobench.errors import BiobenchError

if TYPE_CHECKING:  # pragma: no cover
    from biobench.board.assemble import Board
    from biobench.board.rows import MeasuredRow

__all__ = [
    "VERIFIED_CANNOT",
    "VERIFIED_DIFFERS",
    "VERIFIED_OK",
    "record_status",
    "verify_board",
]

VERIFIED_OK, VERIFIED_DIFFERS, VERIFIED_CANNOT = "ok", "differs", "cannot check"


def _numbers(checks: Sequence[Any]) -> list[Any]:
    # The checks that decide whether a published number is right: every metric value, the
    # test split, the score files and their copies.  The protocol file's sha256 is a row note
    # already ("protocol file changed since the run"); plugin versions are noted separately.
    return [c for c in checks if c.item.startswith(("metric ", "split ", "score file", "copies "))]


def _shown(check: Any, shown: Collection[str] | None) -> bool:
    """Whether a check is about a number the board shows (every metric when ``shown`` is
    ``None``)."""
    if not check.item.startswith("metric "):
        return True
    return shown is None or check.item.removeprefix("metric ") in shown


def record_status(checks: Sequence[Any], shown: Collection[str] | None = None) -> str:
    """``differs`` when a metric, split or score file check differs; ``ok`` when every metric
    in ``shown`` (default: every metric of the record) was recomputed and agrees and the split
    and score files check; else ``cannot check``."""
    numbers = _numbers(checks)
    if any(c.status == VERIFIED_DIFFERS for c in numbers):
        return VERIFIED_DIFFERS
    relevant = [c for c in numbers if _shown(c, shown)]
    if not any(c.item.startswith("metric ") for c in relevant):
        return VERIFIED_CANNOT
    if all(c.status == VERIFIED_OK for c in relevant):
        return VERIFIED_OK
    return VERIFIED_CANNOT


def verify_board(board: Board, output: Path) -> None:
    """Check every record of the board's rows against its score files and mark the rows.

    Each record goes through :func:`biobench.verify.verify_record` (metric values recomputed
    from the score files, the score files themselves, test split, plugin versions, protocol
    file).  A row is ``differs`` when any of its records has a metric value, split or score
    file that fails (named in its notes), else ``ok`` only when every metric value the board
    shows was recomputed and agrees on every record, else ``cannot check`` (old score files,
    files not kept, old null values).  Installed plugins that differ from a record's are noted,
    not counted against the row.
    """
    from biobench.verify import verify_record

    protocol = board.protocol

    def installed(name: str) -> Path | None:
        # The board's own protocol is the installed one of its name (records name it so).
        return Path(protocol.path) if protocol is not None and name == protocol.name else None

    for row in board.rows:
        _verify_row(board, row, Path(output), lambda path: verify_record(path, protocols=installed))


def _verify_row(
    board: Board, row: MeasuredRow, output: Path, verify_record: Callable[[Path], list[Any]]
) -> None:
    """Verify one row's records (see :func:`verify_board`); fills ``board.checks`` and the
    row's ``verified``, ``verified_detail`` and notes."""
    statuses = []
    differing: list[str] = []
    plugins: set[str] = set()
    n_ok = n_cannot = 0
    for record in row.records:
        try:
            checks = verify_record(output / record.path)
        except BiobenchError as exc:
            board.checks[record.path] = []
            statuses.append(VERIFIED_CANNOT)
            row.notes.append(f"cannot verify seed {record.seed}: {exc}")
            continue
        board.checks[record.path] = checks
        statuses.append(record_status(checks, board.metrics))
        for c in _numbers(checks):
            if c.status == VERIFIED_DIFFERS:
                if c.stored is None and c.recomputed is None:
                    differing.append(f"seed {record.seed} {c.item}: {c.reason}")
                else:
                    differing.append(
                        f"seed {record.seed} {c.item}: record {c.stored!r}, "
                        f"recomputed {c.recomputed!r}"
                    )
            elif c.item.startswith("metric ") and _shown(c, board.metrics):
                n_ok += c.status == VERIFIED_OK
                n_cannot += c.status != VERIFIED_OK
        for c in checks:
            if c.item.startswith("plugin ") and c.status == VERIFIED_DIFFERS:
                plugins.add(f"{c.item}: {c.stored} (installed {c.recomputed})")
    if VERIFIED_DIFFERS in statuses:
        row.verified = VERIFIED_DIFFERS
        row.verified_detail = "; ".join(differing)
        row.notes.append("does not verify against its score files: " + "; ".join(differing))
    else:
        row.verified = VERIFIED_CANNOT if VERIFIED_CANNOT in statuses else VERIFIED_OK
        row.verified_detail = (
            f"{n_ok} shown metric value(s) recomputed from score files, {n_cannot} not recomputable"
        )
    if plugins:
        row.notes.append(
            "written by plugin versions other than installed: " + ", ".join(sorted(plugins))
        )
