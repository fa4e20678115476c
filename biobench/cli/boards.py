"""``biobench leaderboard`` and ``biobench compare``: tables, the website, comparisons."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from biobench.cli.base import CONTEXT, _manager, _protocols, cli
from biobench.errors import BiobenchError
from biobench.paths import safe_name

# ---------------------------------------------------------------------------------------------
# leaderboard
# ---------------------------------------------------------------------------------------------


@cli.group(context_settings=CONTEXT)
def leaderboard() -> None:
    """Rebuild leaderboards from run records."""


def _prepare_leaderboards(
    ctx: click.Context, output: Path, protocol_name: str | None, *, verify: bool = True
) -> list:
    """Every requested protocol's leaderboard computed in memory (nothing written)."""
    from biobench import leaderboard as lb

    index = _protocols(_manager(ctx))
    if protocol_name:
        # A name, never a path: it names OUTPUT/<protocol>.csv/.md and OUTPUT/runs/<protocol>.
        safe_name(protocol_name, "--protocol")
    # Every protocol of the folder: their claims are Holm-corrected together (prepare_all).
    present = sorted(d.name for d in (output / "runs").glob("*") if d.is_dir())
    names = [protocol_name] if protocol_name else present
    if not names:
        raise BiobenchError(f"no run records under {output / 'runs'}")
    protocols = []
    for name in dict.fromkeys([*present, *names]):
        try:
            protocol = index.load(name)
        except BiobenchError:
            protocol = None  # records of a protocol file given by path: rebuild without it
        protocols.append((name, protocol))
    return lb.prepare_all(output, protocols, names, verify=verify)


@leaderboard.command("build", context_settings=CONTEXT)
@click.option(
    "--protocol",
    "protocol_name",
    help="Only this protocol, by name (default: every protocol with run records under "
    "OUTPUT/runs).",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("leaderboards"),
    show_default=True,
    help="The folder holding runs/<protocol>/ and the leaderboards.",
)
@click.option(
    "--html",
    "html_dir",
    type=click.Path(path_type=Path),
    help="Also write the leaderboard website (static, viewable offline) into this folder.",
)
@click.option(
    "--verify/--no-verify",
    default=True,
    show_default=True,
    help="Check every record against its score files for the 'verified' column.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Refuse (exit 1, nothing written) a row whose seeds were made at different commits or "
    "from a dirty tree (its code_version column is not empty).",
)
@click.pass_context
def leaderboard_build(
    ctx: click.Context,
    protocol_name: str | None,
    output: Path,
    html_dir: Path | None,
    verify: bool,
    strict: bool,
) -> None:
    """Rebuild OUTPUT/<protocol>.csv and .md from OUTPUT/runs/<protocol>/.

    \b
    Examples:
      biobench leaderboard build
      biobench leaderboard build --protocol quick --output results/
      biobench leaderboard build --html site/      # then open site/index.html
      biobench leaderboard build --strict          # refuse rows mixing code versions
    """
    from biobench import leaderboard as lb

    built = _prepare_leaderboards(ctx, output, protocol_name, verify=verify)
    if strict:
        mixed = [(b.board.name, r) for b in built for r in b.board.rows if r.code_version]
        if mixed:
            name, row = mixed[0]
            more = f" (and {len(mixed) - 1} more row(s))" if len(mixed) > 1 else ""
            # Exit 1 (the records are well formed; the board is refused), nothing written.
            click.echo(
                f"biobench: error: --strict: row '{row.label}' of protocol '{name}' is not one "
                f"code version: {row.code_version}{more}; rerun its seeds at one commit from a "
                "clean tree",
                err=True,
            )
            ctx.exit(1)
    for item in built:
        paths = lb.write(item)
        for kind, path in sorted(paths.items()):
            click.echo(f"{item.board.name} ({kind}): {path}")
    if html_dir is not None:
        from biobench.site import build_site

        result = build_site(built, html_dir)
        click.echo(
            f"website: {result.index} ({len(result.files)} files, {result.written} written, "
            f"{result.removed} removed)"
        )


@leaderboard.command("serve", context_settings=CONTEXT)
@click.option("--protocol", "protocol_name", help="Only this protocol (default: every one).")
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("leaderboards"),
    show_default=True,
    help="The folder holding runs/<protocol>/ and the leaderboards.",
)
@click.option(
    "--html",
    "html_dir",
    type=click.Path(path_type=Path),
    help="Build the website into this folder (default: a temporary folder removed on exit).",
)
@click.option("--port", default=8000, show_default=True, help="Port on 127.0.0.1 (0: any free).")
@click.pass_context
def leaderboard_serve(
    ctx: click.Context,
    protocol_name: str | None,
    output: Path,
    html_dir: Path | None,
    port: int,
) -> None:
    """Build the leaderboard website from OUTPUT/runs and serve it on 127.0.0.1.

    Tables in OUTPUT are not rewritten (use 'leaderboard build' for that).

    \b
    Examples:
      biobench leaderboard serve                   # http://127.0.0.1:8000/
      biobench leaderboard serve --port 8080 --protocol orl
    """
    import tempfile

    from biobench.site import build_site, serve

    built = _prepare_leaderboards(ctx, output, protocol_name)
    with tempfile.TemporaryDirectory(prefix="biobench-site-") as tmp:
        root = html_dir if html_dir is not None else Path(tmp)
        build_site(built, root)
        try:
            serve(root, port, announce=lambda line: click.echo(line, err=False))
        except KeyboardInterrupt:
            click.echo("stopped")


# ---------------------------------------------------------------------------------------------
# compare
# ---------------------------------------------------------------------------------------------


def _compare_side(
    ctx: click.Context, target: str, protocol_name: str | None, output: Path, boards: dict
) -> Any:
    """The one configuration ``target`` names: a record, a folder of records, or a label."""
    from biobench.comparison import rows_from_paths

    path = Path(target)
    if path.exists():
        rows = rows_from_paths(path)
        if len(rows) > 1:
            raise BiobenchError(
                f"{target} holds {len(rows)} configurations ("
                + ", ".join(r.label for r in rows)
                + "); give one record or a folder of one configuration"
            )
        return rows[0]
    if not protocol_name:
        raise BiobenchError(
            f"'{target}' is not a record or folder; to compare run labels give --protocol NAME"
        )
    if protocol_name not in boards:
        from biobench.board import collect

        index = _protocols(_manager(ctx))
        try:
            protocol = index.load(protocol_name)
        except BiobenchError:
            protocol = None
        boards[protocol_name] = collect(output, protocol, protocol_name)
    board = boards[protocol_name]
    row = board.row(target)
    if row is None:
        near = [r.label for r in board.rows if r.label.startswith(target + ".")]
        hint = (
            f"; records labelled '{target}' hold several configurations: {', '.join(near)}"
            if near
            else f"; rows: {', '.join(r.label for r in board.rows)}"
        )
        raise BiobenchError(f"no row '{target}' in protocol '{protocol_name}'{hint}")
    return row


@cli.command(context_settings=CONTEXT)
@click.argument("a", metavar="A")
@click.argument("b", metavar="B")
@click.option("--protocol", "protocol_name", help="Protocol whose run labels A and B name.")
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("leaderboards"),
    show_default=True,
    help="The folder holding runs/<protocol>/ and the leaderboards.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option(
    "--force",
    is_flag=True,
    help="Compare rows measured on different test data anyway; the output says they are not "
    "like-for-like, and why.",
)
@click.pass_context
def compare(
    ctx: click.Context,
    a: str,
    b: str,
    protocol_name: str | None,
    output: Path,
    as_json: bool,
    force: bool,
) -> None:
    """Compare two configurations metric by metric, paired by seed.

    A and B are run labels of one protocol (with --protocol), or run records / folders of
    records. For each headline metric: both means over their own seeds, the mean difference
    A - B over the seeds both have with its 95 % t confidence interval, and the two-sided
    paired t test's p-value (not corrected for the number of metrics).

    Only like is compared with like: rows of different protocols, protocol files (sha256),
    data (fingerprint, identity count) or test splits (split sha256 of a common seed) are
    refused (exit status 2, naming what differs) unless --force is given, when the output is
    marked NOT LIKE-FOR-LIKE.

    \b
    Examples:
      biobench compare case2-ground-truth case1-none --protocol quick
      biobench compare leaderboards/runs/orl/case3-predicted leaderboards/runs/orl/case1-none
    """
    from tabulate import tabulate

    from biobench import comparison

    boards: dict[str, Any] = {}
    row_a = _compare_side(ctx, a, protocol_name, output, boards)
    row_b = _compare_side(ctx, b, protocol_name, output, boards)
    unlike = comparison.check_pairable(row_a, row_b, force=force)
    if protocol_name in boards:
        board = boards[protocol_name]
        results = comparison.compare_rows(
            row_a, row_b, board.metrics, board.lower_is_better, board.reference
        )
    else:
        results = comparison.compare_rows(row_a, row_b)
    if as_json:
        click.echo(json.dumps(comparison.as_json(row_a, row_b, results, unlike), indent=2))
        return
    if unlike:
        click.echo("NOT LIKE-FOR-LIKE (--force): " + "; ".join(unlike))
    for name, row in (("A", row_a), ("B", row_b)):
        click.echo(
            f"{name}: {row.label} ({row.backbone}, fusion {row.fusion}, optimizer "
            f"{row.optimizer}, tasks {'+'.join(row.tasks) or '-'}; seeds "
            f"{', '.join(map(str, row.seeds))}; configuration {row.config_hash[:12]})"
        )
    common = sorted(set(row_a.seeds) & set(row_b.seeds))
    click.echo(f"common seeds: {', '.join(map(str, common)) or 'none'}")
    click.echo("")
    headers, body = comparison.table(results)
    click.echo(tabulate(body, headers=headers, tablefmt="simple", disable_numparse=True))
    click.echo(
        "\nA - B over common seeds; 95 % t interval; two-sided paired t test, uncorrected. "
        "favours: the better side when the interval excludes zero."
        + ("\nNOT LIKE-FOR-LIKE: the rows were measured on different test data." if unlike else "")
    )
