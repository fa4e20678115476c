"""Leaderboard build: the tables, pages and plots of a protocol computed in memory, then committed.

:func:`prepare` computes everything (:class:`Built`: the board, its tables, plots and the bytes
of every file) without writing; :func:`write` stages every file as a temporary file and renames
them into place only once all are staged, so an error leaves the previous leaderboard untouched,
then removes outputs of an earlier build that this one no longer produces.  :func:`build` is
both.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from biobench import claims as claims_mod
from biobench import plots
from biobench.atomic import write_many
from biobench.attribute_gain import attribute_gain_table
from biobench.board import Board, RunRecord, collect, verify_board
from biobench.claims import ClaimResult
from biobench.errors import BiobenchError
from biobench.leaderboard.markdown import attributes_markdown, markdown
from biobench.leaderboard.tables import (
    CLAIM_COLUMNS,
    attribute_table,
    claims_table,
    comparison_table,
    main_table,
    regression_table,
    to_csv,
)
from biobench.protocol import Protocol

__all__ = ["Built", "build", "prepare", "prepare_all", "write", "written_claims"]

_OWNED_SUFFIXES = (
    ".csv",
    ".md",
    "_attributes.csv",
    "_attributes.md",
    "_attribute_gain.csv",
    "_comparisons.csv",
    "_regression.csv",
    "_claims.csv",
)


@dataclass
class Built:
    """A protocol's leaderboard computed in memory: the board, its tables, plots and files."""

    output: Path
    board: Board
    main: pd.DataFrame
    attributes: pd.DataFrame
    comparisons: pd.DataFrame
    regression: pd.DataFrame
    claims: pd.DataFrame
    #: ``{kind: (title, png bytes)}`` (see :func:`biobench.plots.render_all`).
    images: dict[str, tuple[str, bytes]]
    #: Every file :func:`write` writes: ``{key: (path, bytes)}``.
    files: dict[str, tuple[Path, bytes]] = field(default_factory=dict)


def prepare(
    output: Path,
    protocol: Protocol | None,
    protocol_name: str,
    records: Sequence[RunRecord] | None = None,
    *,
    verify: bool = True,
    board: Board | None = None,
    claims: Sequence[ClaimResult] | None = None,
) -> Built:
    """Compute the leaderboard of ``protocol_name`` in memory; nothing is written.

    :param records: the protocol's records already parsed (read from
        ``output/runs/<protocol_name>`` otherwise).
    :param verify: check every record against its score files and fill the ``verified``
        column (:func:`biobench.board.verify_board`); otherwise the column is empty.
    :param board: the board already collected (see :func:`prepare_all`).
    :param claims: its claims already evaluated and Holm-corrected over a family of protocols
        (see :func:`prepare_all`); evaluated over this protocol alone otherwise.
    :raises BiobenchError: when there is nothing to build from or a record is unreadable.
    """
    output = Path(output)
    if board is None:
        board = collect(output, protocol, protocol_name, records)
    if verify:
        verify_board(board, output)
    main = main_table(board)
    attributes = attribute_table(board)
    comparisons = comparison_table(board)
    regression = regression_table(board)
    claims_frame = claims_table(board, claims)

    def previous(kind: str) -> bytes | None:
        # The PNG of the last build: reused when its inputs are unchanged (see plots).
        path = output / f"{protocol_name}_{kind}.png"
        return path.read_bytes() if path.is_file() else None

    images = plots.render_all(board, previous)  # {kind: (title, png bytes)}
    built = Built(output, board, main, attributes, comparisons, regression, claims_frame, images)
    built.files = _files(built)
    return built


def prepare_all(
    output: Path,
    protocols: Sequence[tuple[str, Protocol | None]],
    only: Sequence[str] | None = None,
    *,
    verify: bool = True,
) -> list[Built]:
    """The leaderboards of ``only`` (default: every protocol of ``protocols``), with the claims
    of **every** protocol in ``protocols`` (``(name, protocol)``, normally every protocol with
    records under ``output/runs``) Holm-corrected as one family: the leaderboards of one folder,
    and the README that quotes them, report all those claims together, so a claim's corrected
    p-value does not depend on which protocols a build was asked for.

    :raises BiobenchError: when a requested protocol has nothing to build from.
    """
    output = Path(output)
    wanted = [name for name, _ in protocols] if only is None else list(only)
    boards: dict[str, Board] = {}
    for name, protocol in protocols:
        try:
            boards[name] = collect(output, protocol, name)
        except BiobenchError:
            if name in wanted:
                raise  # another protocol without records has no claims to add
    family = claims_mod.correct({name: claims_mod.evaluate(b) for name, b in boards.items()})
    index = dict(protocols)
    return [
        prepare(
            output,
            index.get(name),
            name,
            verify=verify,
            board=boards.get(name),
            claims=family.get(name),
        )
        for name in wanted
    ]


def _files(built: Built) -> dict[str, tuple[Path, bytes]]:
    """Every file of a prepared leaderboard, ``{key: (path, bytes)}`` (keys as :func:`build`
    returns them); tables without rows give no file."""
    output, protocol_name = built.output, built.board.name
    plot_links = {title: f"{protocol_name}_{kind}.png" for kind, (title, _) in built.images.items()}
    files: dict[str, tuple[Path, bytes]] = {}

    def add(key: str, suffix: str, text: str) -> None:
        files[key] = (output / f"{protocol_name}{suffix}", text.encode("utf-8"))

    add("csv", ".csv", to_csv(built.main))
    add(
        "md",
        ".md",
        markdown(
            built.board,
            built.main,
            built.attributes,
            built.comparisons,
            built.regression,
            plot_links,
            built.claims,
        ),
    )
    if len(built.attributes):
        add("attributes_csv", "_attributes.csv", to_csv(built.attributes))
        gain = attribute_gain_table(built.board)
        add(
            "attributes_md",
            "_attributes.md",
            attributes_markdown(built.board, built.attributes, gain),
        )
        # Kept even without pairs (a header; the attributes page says why).
        add("attribute_gain_csv", "_attribute_gain.csv", to_csv(gain))
    # Written even when empty (a header; the Markdown says why), so that a file never
    # disappears without a word from one build to the next.
    add("comparisons_csv", "_comparisons.csv", to_csv(built.comparisons))
    add("claims_csv", "_claims.csv", to_csv(built.claims))
    if len(built.regression):
        add("regression_csv", "_regression.csv", to_csv(built.regression))
    for kind, (_, data) in built.images.items():
        files[f"plot_{kind}"] = (output / f"{protocol_name}_{kind}.png", data)
    return files


def build(
    output: Path,
    protocol: Protocol | None,
    protocol_name: str,
    records: Sequence[RunRecord] | None = None,
    *,
    verify: bool = True,
) -> dict[str, Path]:
    """Rebuild the leaderboard of ``protocol_name`` from its run records under ``output``.

    :param output: the output root holding ``runs/<protocol_name>/**/*.json``; tables are
        written directly in it.
    :param protocol: the current protocol (its version selects records; its ``reported`` rows
        are added); ``None`` when it is not installed any more: then the highest version found
        in the records is current and there are no reported rows.
    :param protocol_name: the protocol's name (directory and file stem).
    :param records: the records already parsed (see :func:`prepare`).
    :param verify: fill the ``verified`` column (see :func:`prepare`).
    :returns: the files written, keyed ``csv``, ``md``, ``attributes_csv``,
        ``attributes_md``, ``comparisons_csv``, ``regression_csv`` and ``plot_<kind>``
        (only those with content).
    :raises BiobenchError: when there is nothing to build from or a record is unreadable; nothing
        is written then.

    The protocol's claims are Holm-corrected together with the claims the folder's other
    boards report (their ``<name>_claims.csv``, as :func:`written_claims` reads them), so that
    a run that rebuilds one board corrects over the same family as a build of all.
    """
    output = Path(output)
    board = collect(output, protocol, protocol_name, records)
    family = written_claims(output, exclude=protocol_name)
    family[protocol_name] = claims_mod.evaluate(board)
    own = claims_mod.correct(family)[protocol_name]
    return write(prepare(output, protocol, protocol_name, verify=verify, board=board, claims=own))


def written_claims(output: Path, exclude: str = "") -> dict[str, list[ClaimResult]]:
    """The claims the boards of ``output`` report, ``{protocol: results}``, read back from each
    ``<protocol>_claims.csv`` (but ``exclude``'s); a CSV an older biobench wrote (no
    ``method`` column: a t test over seeds) is left out, as its p-values are not this test's."""
    import math

    out: dict[str, list[ClaimResult]] = {}
    for path in sorted(Path(output).glob("*_claims.csv")):
        name = path.name[: -len("_claims.csv")]
        if name == exclude:
            continue
        try:
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        except (OSError, ValueError) as exc:
            raise BiobenchError(f"{path}: unreadable claims CSV ({exc})") from exc
        if "method" not in frame.columns or set(CLAIM_COLUMNS) - set(frame.columns):
            continue
        results = []
        for row in frame.to_dict("records"):

            def number(key: str, row: dict = row) -> float:
                value = row.get(key)
                return math.nan if value is None or pd.isna(value) else float(value)

            def count(key: str, row: dict = row) -> int:
                value = row.get(key)
                return 0 if value is None or pd.isna(value) else int(value)

            def text(key: str, row: dict = row) -> str:
                value = row.get(key)
                return "" if value is None or pd.isna(value) else str(value)

            results.append(
                ClaimResult(
                    metric=text("metric"),
                    better=text("better"),
                    than=text("than"),
                    note=text("note"),
                    lower_is_better=False,
                    n_common_seeds=count("n_common_seeds"),
                    n_test_units=count("n_test_units"),
                    mean_difference=number("mean_difference"),
                    ci95_low=number("ci95_low"),
                    ci95_high=number("ci95_high"),
                    p_value=number("p_value"),
                    p_holm=number("p_holm"),
                    verdict=text("verdict"),
                    method=text("method"),
                    reason=text("reason"),
                )
            )
        out[name] = results
    return out


def write(built: Built) -> dict[str, Path]:
    """Write a prepared leaderboard; files an earlier build made and this one does not are
    removed.  Returns the files written (see :func:`build`)."""
    files, output, protocol_name = built.files, built.output, built.board.name
    # Only now touch the disk.  Every file is first staged as a temporary file beside its
    # target; only when all are staged are they renamed into place.  An error while staging
    # (disk full, permissions) removes the temporaries and leaves the previous leaderboard
    # exactly as it was.
    write_many(list(files.values()))
    # Outputs of an earlier build that this one does not produce (a plot whose data went away)
    # are removed so that no stale file lingers next to the tables.
    produced = {path for path, _ in files.values()}
    owned = [output / f"{protocol_name}{suffix}" for suffix in _OWNED_SUFFIXES]
    owned += [output / f"{protocol_name}_{kind}.png" for kind in plots.PLOT_KINDS]
    for path in owned:
        if path not in produced and path.exists():
            path.unlink()
    return {key: path for key, (path, _) in files.items()}
