"""The ``biobench`` command line.

Exit status: 0 on success; 2 on bad usage or bad input (one line, no traceback, nothing written);
1 when a run fails after it started (the message says what was kept).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from biobench import __version__
from biobench.errors import BiobenchError, RunFailed

#: Set to see the Python traceback of an unexpected error instead of one line.
TRACEBACK_ENV = "BIOBENCH_TRACEBACK"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class BiobenchGroup(click.Group):
    """Turns biobench's exceptions into one-line messages and exit statuses."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BiobenchError as exc:
            click.echo(f"biobench: error: {exc}", err=True)
            ctx.exit(2)
        except RunFailed as exc:
            click.echo(f"biobench: run failed: {exc}", err=True)
            ctx.exit(1)
        except KeyboardInterrupt:
            click.echo("biobench: interrupted; finished records were kept", err=True)
            ctx.exit(130)
        except (click.exceptions.Exit, click.ClickException, click.exceptions.Abort):
            raise
        except OSError as exc:
            # A file system problem (permissions, a full disk) is the user's to fix: one line.
            where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
            click.echo(f"biobench: error: {exc.strerror or exc}{where}", err=True)
            ctx.exit(2)
        except Exception as exc:  # noqa: BLE001 - no traceback reaches the user by default
            if os.environ.get(TRACEBACK_ENV):
                raise
            click.echo(
                f"biobench: internal error: {type(exc).__name__}: {exc} (set {TRACEBACK_ENV}=1 "
                f"for the traceback, and please report it)",
                err=True,
            )
            ctx.exit(1)


def _manager(ctx: click.Context) -> Any:
    from biobench.plugins import PluginManager

    obj = ctx.find_root().obj or {}
    pm = PluginManager(extra_modules=obj.get("plugins", ()), block=obj.get("block", ()))
    for warning in pm.warnings:
        click.echo(f"biobench: warning: {warning}", err=True)
    return pm


def _protocols(pm: Any) -> Any:
    from biobench.protocol import ProtocolIndex

    return ProtocolIndex(pm.protocol_dirs())


@click.group(cls=BiobenchGroup, context_settings=CONTEXT)
@click.version_option(__version__, prog_name="biobench")
@click.option(
    "-p",
    "--plugin",
    "plugins",
    multiple=True,
    metavar="MODULE",
    help="Load an extra plugin module (repeatable).",
)
@click.option(
    "--block",
    multiple=True,
    metavar="NAME",
    help="Do not load the plugin with this entry-point name (repeatable).",
)
@click.pass_context
def cli(ctx: click.Context, plugins: tuple[str, ...], block: tuple[str, ...]) -> None:
    """biobench: train and evaluate face biometrics models on pinned protocols.

    \b
    Examples:
      biobench run --protocol quick
      biobench plugins --json
      biobench protocols list
      biobench leaderboard build --protocol quick
    """
    ctx.obj = {"plugins": plugins, "block": block}


# ---------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------


def _parse_seeds(text: str | None) -> list[int] | None:
    if text is None:
        return None
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError as exc:
        raise BiobenchError(f"--seeds: expected integers like 0,1,2, got {text!r}") from exc
    if not seeds:
        raise BiobenchError("--seeds: no seed given")
    negative = [s for s in seeds if s < 0]
    if negative:
        raise BiobenchError(f"--seeds: seeds are >= 0, got {negative}")
    repeated = sorted({s for s in seeds if seeds.count(s) > 1})
    if repeated:
        raise BiobenchError(f"--seeds: seed {repeated} given twice; each seed runs once")
    return seeds


@cli.command(context_settings=CONTEXT)
@click.option(
    "--protocol",
    "protocol_name",
    required=True,
    metavar="NAME|PATH",
    help="A protocol name (see 'biobench protocols list') or a .toml file.",
)
@click.option("--dataset", help="Use this dataset plugin in every run.")
@click.option("--backbone", help="Use this backbone in every run (e.g. vgg16, timm:resnet18).")
@click.option("--fusion", help="Use this fusion strategy in every run.")
@click.option("--optimizer", help="Use this optimizer in every run.")
@click.option(
    "--set",
    "sets",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a protocol key, e.g. training.epochs=2 (repeatable).",
)
@click.option("--seeds", help="Comma-separated seeds, replacing the protocol's.")
@click.option("--runs", "only", help="Comma-separated run labels to execute (default: all).")
@click.option("--device", default="auto", show_default=True, help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--data-root",
    type=click.Path(path_type=Path),
    help="Dataset directory (default: $BIOBENCH_DATA/<name>, then ~/.local/share).",
)
@click.option(
    "--output",
    type=click.Path(path_type=Path),
    default=Path("leaderboards"),
    show_default=True,
    help="Where run records and leaderboards are written.",
)
@click.option(
    "--label",
    "variant",
    metavar="NAME",
    help="Name this variant: runs are labelled <run label>.<NAME> (default with overrides: "
    "<run label>.<configuration hash>).",
)
@click.option(
    "--resume",
    is_flag=True,
    help="Skip seeds whose record holds this configuration; continue interrupted ones.",
)
@click.option("--dry-run", is_flag=True, help="Check everything and print the plan; write nothing.")
@click.option("--progress/--no-progress", default=True, help="Show progress bars.")
@click.option(
    "--amp",
    type=click.Choice(["auto", "bf16", "off"]),
    default="auto",
    show_default=True,
    help="bf16 autocast (auto: on for CUDA, off on the CPU).",
)
@click.option(
    "--channels-last/--no-channels-last",
    default=None,
    help="NHWC memory format for convolutions (default: on).",
)
@click.option("--compile", "compile_", is_flag=True, help="torch.compile the backbone.")
@click.option(
    "--profile",
    type=click.Path(path_type=Path),
    metavar="DIR",
    help="Write a short torch profiler trace of the first run to DIR.",
)
@click.option(
    "--jobs",
    default=1,
    show_default=True,
    type=click.IntRange(1),
    help="Run grid cells in this many parallel processes.",
)
@click.option(
    "--threads",
    type=click.IntRange(1),
    metavar="N",
    help="CPU threads for torch (recorded; the CPU numbers can depend on it).",
)
@click.option(
    "--nproc",
    type=click.IntRange(1),
    metavar="N",
    help="Launch N processes with torchrun (DistributedDataParallel).",
)
@click.pass_context
def run(
    ctx: click.Context,
    protocol_name: str,
    dataset: str | None,
    backbone: str | None,
    fusion: str | None,
    optimizer: str | None,
    sets: tuple[str, ...],
    seeds: str | None,
    only: str | None,
    device: str,
    data_root: Path | None,
    output: Path,
    variant: str | None,
    resume: bool,
    dry_run: bool,
    progress: bool,
    amp: str,
    channels_last: bool | None,
    compile_: bool,
    profile: Path | None,
    jobs: int,
    threads: int | None,
    nproc: int | None,
) -> None:
    """Run a protocol's grid of runs over its seeds and rebuild its leaderboard.

    \b
    Examples:
      biobench run --protocol quick
      biobench run --protocol orl --seeds 0,1,2 --device cuda
      biobench run --protocol pubfig --data-root ~/data/pubfig --runs case3-predicted
      biobench run --protocol quick --backbone timm:resnet18 --set training.epochs=2
      biobench run --protocol my_protocol.toml --dry-run
      biobench run --protocol quick --jobs 2
      biobench run --protocol pubfig --nproc 4      # torchrun, DistributedDataParallel
    """
    if nproc is not None and nproc > 1:
        _launch_torchrun(nproc)
        return
    from biobench.engine import Engine, RunOptions
    from biobench.protocol import dropped_options, parse_override
    from biobench.runtime import Accel

    pm = _manager(ctx)
    protocol = _protocols(pm).load(protocol_name)
    # Component switches first, then --set: options given on the same command line belong to
    # the component chosen there (--backbone X --set model.backbone_options.width=4 keeps 4).
    overrides = [
        (key, value)
        for key, value in (
            ("dataset.name", dataset),
            ("model.backbone", backbone),
            ("model.fusion", fusion),
            ("training.optimizer", optimizer),
        )
        if value
    ]
    overrides += [parse_override(s) for s in sets]
    labels = [s.strip() for s in only.split(",")] if only else None
    seed_list = _parse_seeds(seeds)
    specs = protocol.runs(overrides, seed_list, labels)
    base_specs = protocol.runs((), seed_list, labels)
    engine = Engine(
        pm,
        RunOptions(
            output=output,
            device=device,
            data_root=data_root,
            resume=resume,
            progress=progress and sys.stderr.isatty(),
            dry_run=dry_run,
            accel=Accel(amp=amp, channels_last=channels_last, compile=compile_),
            profile=profile,
            jobs=jobs,
            threads=threads,
            label=variant,
        ),
    )
    for message in dropped_options(protocol, specs, overrides):
        click.echo(f"biobench: warning: {message}", err=True)
    result = engine.run_protocol(
        protocol, specs, base_specs, [f"{k}={_show(v)}" for k, v in overrides]
    )
    if not engine.dist.is_main:
        return
    if dry_run:
        click.echo(
            "dry run: every run resolved and checked (data, model, one training step); "
            "nothing was written"
        )
        return
    for warning in result.warnings:
        click.echo(f"biobench: warning: {warning}", err=True)
    md = result.leaderboard.get("md")
    if md is not None and Path(md).exists():
        click.echo(Path(md).read_text(encoding="utf-8"))
    click.echo(f"{len(result.records)} run records under {Path(output) / 'runs' / protocol.name}")
    for kind, path in sorted(result.leaderboard.items()):
        click.echo(f"leaderboard ({kind}): {path}")


def _show(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def _launch_torchrun(nproc: int) -> None:
    """Re-run this command under ``torchrun --nproc-per-node N`` (without ``--nproc``)."""
    import subprocess

    argv = sys.argv[1:]
    cleaned: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
            continue
        if arg == "--nproc":
            skip = True
            continue
        if arg.startswith("--nproc="):
            continue
        cleaned.append(arg)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        f"--nproc-per-node={nproc}",
        "-m",
        "biobench",
        *cleaned,
    ]
    code = subprocess.call(cmd)
    if code != 0:
        raise RunFailed(f"torchrun exited with status {code}; finished records were kept")


# ---------------------------------------------------------------------------------------------
# plugins
# ---------------------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List every plugin: distribution, version, hooks, registered names, errors.

    \b
    Examples:
      biobench plugins
      biobench plugins --json
      BIOBENCH_DISABLE_PLUGIN_AUTOLOAD=1 biobench -p my_plugin plugins
    """
    pm = _manager(ctx)
    listing = pm.describe()
    trouble = any(p.get("broken") or p.get("collisions") for p in listing)
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        ctx.exit(1 if trouble else 0)
    from tabulate import tabulate

    rows = []
    for p in listing:
        registered = "; ".join(f"{k}: {', '.join(v)}" for k, v in p.get("registered", {}).items())
        status = f"BROKEN: {p['error']}" if p.get("broken") else registered or "(nothing)"
        if p.get("collisions"):
            status = f"COLLISION: {'; '.join(p['collisions'])}. Registered: {status}"
        dist = f"{p.get('distribution') or '-'} {p.get('version') or ''}".strip()
        rows.append([p["name"], dist, status])
    click.echo(tabulate(rows, headers=["plugin", "distribution", "registered"]))
    if trouble:
        # Exit 1: a listed plugin is broken or collides; runs that use its names will fail.
        ctx.exit(1)


# ---------------------------------------------------------------------------------------------
# protocols
# ---------------------------------------------------------------------------------------------


@cli.group(context_settings=CONTEXT)
def protocols() -> None:
    """List, show and validate protocol files."""


@protocols.command("list", context_settings=CONTEXT)
@click.pass_context
def protocols_list(ctx: click.Context) -> None:
    """List the protocols shipped by installed plugins."""
    from tabulate import tabulate

    index = _protocols(_manager(ctx))
    rows = []
    for name in index.names():
        try:
            p = index.load(name)
            rows.append([name, p.version, len(p.data.get("runs") or [1]), p.description[:60]])
        except BiobenchError as exc:
            rows.append([name, "?", "?", f"INVALID: {exc}"])
    click.echo(tabulate(rows, headers=["protocol", "version", "runs", "description"]))


@protocols.command("show", context_settings=CONTEXT)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the resolved protocol as JSON.")
@click.pass_context
def protocols_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show a protocol with its defaults and `extends` resolved."""
    p = _protocols(_manager(ctx)).load(name)
    resolved = {**p.data, "_file": str(p.path), "_sha256": p.sha256}
    if as_json:
        click.echo(json.dumps(resolved, indent=2))
        return
    click.echo(f"# {p.name} v{p.version} ({p.path})\n# sha256 {p.sha256}")
    for spec in p.runs():
        click.echo(
            f"- {spec.label}: dataset={spec.dataset['name']} backbone="
            f"{spec.model['backbone']} fusion={spec.model['fusion']} optimizer="
            f"{spec.training['optimizer']} tasks={'+'.join(spec.training['tasks']) or '-'}"
            f" seeds={spec.seeds}"
        )
    click.echo(json.dumps(resolved, indent=2))


@protocols.command("validate", context_settings=CONTEXT)
@click.argument("targets", nargs=-1, required=True)
@click.pass_context
def protocols_validate(ctx: click.Context, targets: tuple[str, ...]) -> None:
    """Validate protocols: schema, components and their options, data (when present), and one
    training step of every run's model on the CPU (the checks every real run starts with)."""
    from biobench.context import RunContext, RunOptions
    from biobench.data import DataCache
    from biobench.preflight import preflight

    pm = _manager(ctx)
    index = _protocols(pm)
    for target in targets:
        p = index.load(target)
        run_ctx = RunContext.create(
            pm, RunOptions(device="cpu", progress=sys.stderr.isatty(), log=lambda m: None)
        )
        checks = preflight(run_ctx, p, p.runs(), DataCache(run_ctx), need_data=False)
        notes = sorted({n for c in checks for n in c.notes})
        state = "ok" if all(c.data_checked for c in checks) else "ok without data"
        click.echo(f"{target}: {state} ({p.name} v{p.version}, {len(p.runs())} runs checked)")
        for note in notes:
            click.echo(f"  {note}")


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
    names = (
        [protocol_name]
        if protocol_name
        else sorted(d.name for d in (output / "runs").glob("*") if d.is_dir())
    )
    if not names:
        raise BiobenchError(f"no run records under {output / 'runs'}")
    built = []
    for name in names:
        try:
            protocol = index.load(name)
        except BiobenchError:
            protocol = None  # records of a protocol file given by path: rebuild without it
        built.append(lb.prepare(output, protocol, name, verify=verify))
    return built


@leaderboard.command("build", context_settings=CONTEXT)
@click.option(
    "--protocol",
    "protocol_name",
    help="Only this protocol (default: every protocol with run records under OUTPUT/runs).",
)
@click.option(
    "--output", type=click.Path(path_type=Path), default=Path("leaderboards"), show_default=True
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
@click.pass_context
def leaderboard_build(
    ctx: click.Context,
    protocol_name: str | None,
    output: Path,
    html_dir: Path | None,
    verify: bool,
) -> None:
    """Rebuild OUTPUT/<protocol>.csv and .md from OUTPUT/runs/<protocol>/.

    \b
    Examples:
      biobench leaderboard build
      biobench leaderboard build --protocol quick --output results/
      biobench leaderboard build --html site/      # then open site/index.html
    """
    from biobench import leaderboard as lb

    built = _prepare_leaderboards(ctx, output, protocol_name, verify=verify)
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
    "--output", type=click.Path(path_type=Path), default=Path("leaderboards"), show_default=True
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
    "--output", type=click.Path(path_type=Path), default=Path("leaderboards"), show_default=True
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def compare(
    ctx: click.Context,
    a: str,
    b: str,
    protocol_name: str | None,
    output: Path,
    as_json: bool,
) -> None:
    """Compare two configurations metric by metric, paired by seed.

    A and B are run labels of one protocol (with --protocol), or run records / folders of
    records. For each headline metric: both means over their own seeds, the mean difference
    A - B over the seeds both have with its 95 % t confidence interval, and the two-sided
    paired t test's p-value (not corrected for the number of metrics).

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
    comparison.check_pairable(row_a, row_b)
    if protocol_name in boards:
        board = boards[protocol_name]
        results = comparison.compare_rows(
            row_a, row_b, board.metrics, board.lower_is_better, board.reference
        )
    else:
        results = comparison.compare_rows(row_a, row_b)
    if as_json:
        click.echo(json.dumps(comparison.as_json(row_a, row_b, results), indent=2))
        return
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
    )


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


def _options(pairs: tuple[str, ...]) -> dict[str, Any]:
    from biobench.protocol import parse_value

    out: dict[str, Any] = {}
    for text in pairs:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise BiobenchError(f"-o: expected key=value, got {text!r}")
        out[key.strip()] = parse_value(raw)
    return out


def _load_dataset(
    ctx: click.Context, name: str, options: dict[str, Any], image_size: int, data_root: Path | None
) -> tuple[Any, Any, Any]:
    from biobench.context import data_roots, default_cache_dir
    from biobench.contracts import DataContext

    pm = _manager(ctx)
    dataset, _ = pm.build("dataset", name, options)
    data_ctx = DataContext(
        roots=data_roots(name, data_root),
        cache_dir=default_cache_dir() / "datasets" / name,
        image_size=image_size,
        explicit_root=data_root is not None,
        progress=sys.stderr.isatty(),
    )
    return pm, dataset, data_ctx


def _plugin_call(what: str, func: Any, *args: Any, **kwargs: Any) -> Any:
    """Call into a plugin: its bad-input errors pass through, anything else is named."""
    from biobench.errors import PluginError

    try:
        return func(*args, **kwargs)
    except (BiobenchError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - a plugin bug is one line naming the plugin
        raise PluginError(f"{what} raised {type(exc).__name__}: {exc}") from exc


_DATASET_OPTIONS = [
    click.argument("name"),
    click.option(
        "-o",
        "--option",
        "option_pairs",
        multiple=True,
        metavar="KEY=VALUE",
        help="A dataset option, as in the protocol's [dataset] options (repeatable).",
    ),
    click.option(
        "--data-root",
        type=click.Path(path_type=Path),
        help="Dataset directory (default: $BIOBENCH_DATA/<name>, then ~/.local/share).",
    ),
    click.option("--image-size", default=64, show_default=True, help="Image size to load at."),
]


def _dataset_options(func: Any) -> Any:
    for decorator in reversed(_DATASET_OPTIONS):
        func = decorator(func)
    return func


@cli.group(context_settings=CONTEXT)
def data() -> None:
    """Preview, export, prepare and check datasets."""


@data.command("preview", context_settings=CONTEXT)
@_dataset_options
@click.option("--out", type=click.Path(path_type=Path), help="PNG file (default: NAME.png).")
@click.option("--identities", default=6, show_default=True)
@click.option("--per-identity", default=8, show_default=True)
@click.pass_context
def data_preview(
    ctx: click.Context,
    name: str,
    option_pairs: tuple[str, ...],
    data_root: Path | None,
    image_size: int,
    out: Path | None,
    identities: int,
    per_identity: int,
) -> None:
    """Write a contact sheet: identities in rows, their images in columns, attributes below.

    \b
    Examples:
      biobench data preview synthfaces
      biobench data preview synthfaces -o difficulty=0.8 --out hard.png
    """
    from biobench.preview import contact_sheet

    _, dataset, data_ctx = _load_dataset(ctx, name, _options(option_pairs), image_size, data_root)
    path = contact_sheet(
        _plugin_call(f"dataset '{name}'", dataset.load, data_ctx),
        out or Path(f"{name}.png"),
        identities=identities,
        per_identity=per_identity,
    )
    click.echo(f"wrote {path}")


@data.command("export", context_settings=CONTEXT)
@_dataset_options
@click.option("--format", "fmt", required=True, help="An exporter name, e.g. celeba.")
@click.argument("out", type=click.Path(path_type=Path))
@click.pass_context
def data_export(
    ctx: click.Context,
    name: str,
    option_pairs: tuple[str, ...],
    data_root: Path | None,
    image_size: int,
    fmt: str,
    out: Path,
) -> None:
    """Write a dataset in another dataset's real file layout.

    \b
    Examples:
      biobench data export synthfaces --format celeba exported/
    """
    pm, dataset, data_ctx = _load_dataset(ctx, name, _options(option_pairs), image_size, data_root)
    entry, _ = pm.get("exporter", fmt)
    loaded = _plugin_call(f"dataset '{name}'", dataset.load, data_ctx)
    _plugin_call(f"exporter '{fmt}' ({entry.origin})", entry.factory, loaded, out)
    click.echo(f"wrote {name} in {fmt} format to {out}")


@data.command("prepare", context_settings=CONTEXT)
@_dataset_options
@click.option(
    "--root",
    type=click.Path(path_type=Path),
    help="Where to prepare the dataset (default: the first place biobench looks).",
)
@click.option(
    "--from",
    "source",
    type=click.Path(path_type=Path),
    help="A downloaded archive or folder to prepare from.",
)
@click.option("--set", "subset", help="Which part of the dataset (e.g. dev or eval for PubFig).")
@click.pass_context
def data_prepare(
    ctx: click.Context,
    name: str,
    option_pairs: tuple[str, ...],
    data_root: Path | None,
    image_size: int,
    root: Path | None,
    source: Path | None,
    subset: str | None,
) -> None:
    """Download or extract a dataset into place, verifying what it can.

    \b
    Examples:
      biobench data prepare pubfig --root ~/data/pubfig --set dev
      biobench data prepare lfw --from ~/Downloads/lfw.tgz
      biobench data prepare celeba --from ~/Downloads/celeba/
    """
    _, dataset, data_ctx = _load_dataset(ctx, name, {}, image_size, data_root)
    if not hasattr(dataset, "prepare"):
        raise BiobenchError(f"dataset '{name}' has no preparation step")
    target = root or data_ctx.roots[0]
    report = _plugin_call(
        f"dataset '{name}' prepare",
        dataset.prepare,
        target,
        source=source,
        subset=subset,
        progress=data_ctx.progress,
        **_options(option_pairs),
    )
    click.echo(report or f"prepared {name} in {target}")


@data.command("check", context_settings=CONTEXT)
@_dataset_options
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def data_check(
    ctx: click.Context,
    name: str,
    option_pairs: tuple[str, ...],
    data_root: Path | None,
    image_size: int,
    as_json: bool,
) -> None:
    """Say what of a dataset is present, what is missing, and its fingerprint.

    Exit status 0 when the dataset was found, 3 when it was not (the report says where biobench
    looked), 2 on bad input.
    """
    _, dataset, data_ctx = _load_dataset(ctx, name, _options(option_pairs), image_size, data_root)
    if hasattr(dataset, "check"):
        report = _plugin_call(f"dataset '{name}' check", dataset.check, data_ctx)
    else:
        loaded = _plugin_call(f"dataset '{name}'", dataset.load, data_ctx)
        report = {
            "images": len(loaded),
            "identities": len(loaded.identity_names),
            "missing": loaded.missing,
            "fingerprint": loaded.fingerprint,
        }
    if as_json:
        click.echo(json.dumps(report, indent=2, default=str))
    else:
        for key, value in report.items():
            click.echo(f"{key}: {value}")
    if isinstance(report, dict) and report.get("found") is False:
        # The report was printed; the status says the dataset cannot be used as it is.
        ctx.exit(3)


# ---------------------------------------------------------------------------------------------
# score
# ---------------------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.argument("score_file", type=click.Path(path_type=Path))
@click.option(
    "--metrics",
    default=None,
    help="Comma-separated: verification, identification, attributes "
    "(default: the CSV's kind, else verification).",
)
@click.option(
    "-o",
    "--option",
    "option_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metric options (repeatable): far=0.001, k=[1,5], max_rank=20, threshold=0.5.",
)
@click.option(
    "--aggregate",
    type=click.Choice(["max", "mean"]),
    default="max",
    show_default=True,
    help="Identification: how several gallery items of one identity give its score.",
)
@click.option(
    "--convention",
    type=click.Choice(["biobench", "bob"]),
    default="biobench",
    show_default=True,
    help="Verification: bob places EER, TAR@FAR and AUC by bob.measure's rules (docs/metrics.md).",
)
@click.option(
    "--eval",
    "eval_file",
    type=click.Path(path_type=Path),
    default=None,
    help="Verification: thresholds chosen on SCORE_FILE (dev) applied to this file (eval), "
    "with the expected performance curve.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def score(
    score_file: Path,
    metrics: str | None,
    option_pairs: tuple[str, ...],
    aggregate: str,
    convention: str,
    eval_file: Path | None,
    as_json: bool,
) -> None:
    """Compute metrics from a score file (Bob 4-/5-column or biobench CSV).

    NaN scores are failures to acquire (counted; rejections in the rates). Identification
    files with several rows per (probe, identity) are aggregated per identity (--aggregate).
    Notes on what was done go to stderr.

    \b
    Examples:
      biobench score leaderboards/runs/orl/case1-none/seed-0-scores/verification.csv
      biobench score leaderboards/runs/orl/case1-none/seed-0-scores/identification.scores \\
          --metrics identification -o k=[1,5]
      biobench score my_system.scores --metrics verification --json
    """
    from biobench.atomic import jsonable
    from biobench.scores import read_scores, score_set_metrics

    if not score_file.is_file():
        raise BiobenchError(f"no such score file: {score_file}")
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    options = _options(option_pairs)
    if aggregate != "max" or "aggregate" not in options:
        options["aggregate"] = aggregate
    scores = read_scores(score_file)
    if names is None or "identification" not in names:
        if not (names is None and scores.kind in ("identification", "nn_identification")):
            options.pop("aggregate")
    verification = names is None and scores.kind not in (
        "identification",
        "nn_identification",
        "attributes",
    )
    if convention != "biobench" and (verification or (names and "verification" in names)):
        options["convention"] = convention
    result = score_set_metrics(scores, names, options)
    if eval_file is not None:
        from biobench.metrics_core import dev_eval

        if not eval_file.is_file():
            raise BiobenchError(f"no such score file: {eval_file}")
        evaluation = read_scores(eval_file)
        dev_values, _, dev_details = dev_eval(
            scores.score, scores.genuine, evaluation.score, evaluation.genuine
        )
        result["dev_eval"] = {"values": dev_values, "details": dev_details, "notes": []}
    values: dict[str, float] = {}
    notes: list[str] = []
    for name, output in result.items():
        values.update(output["values"])
        notes += [f"{name}: {n}" for n in output["notes"]]
        notes += [
            f"{name}: {k} is NaN: {why}"
            for k, why in output["details"].get("nan_reasons", {}).items()
        ]
    if as_json:
        click.echo(
            json.dumps(
                jsonable({"file": str(score_file), "values": values, "notes": notes}), indent=2
            )
        )
        return
    for note in notes:
        click.echo(f"biobench: note: {note}", err=True)
    for key, value in values.items():
        click.echo(f"{key}\t{value}")


# ---------------------------------------------------------------------------------------------
# verify
# ---------------------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.argument("target", type=click.Path(path_type=Path), metavar="RECORD|DIR")
@click.option(
    "--data",
    type=click.Path(path_type=Path),
    help="Dataset directory (the data fingerprint is reported, not recomputed).",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.option("--quiet", is_flag=True, help="Print only checks that are not ok.")
def verify(target: Path, data: Path | None, as_json: bool, quiet: bool) -> None:
    """Recompute a run record's numbers from its score files and check its provenance.

    For each record (a seed-*.json file, or every record under DIR): every metric value from
    the score files with the recorded metric options (agreement: relative 1e-9), the protocol
    file's sha256, the split sha256, and the plugin versions installed now. Each check is ok,
    DIFFERS (both values) or cannot check (why). Exit status 1 when any check differs.

    \b
    Examples:
      biobench verify leaderboards/runs/quick/case1-none/seed-0.json
      biobench verify leaderboards/runs/ --json
    """
    from biobench.verify import DIFFERS, verify_path
    from biobench.verify import as_json as to_json

    results = verify_path(target, data)
    differs = any(c.status == DIFFERS for checks in results.values() for c in checks)
    if as_json:
        click.echo(json.dumps(to_json(results), indent=2))
    else:
        for path, checks in results.items():
            bad = sum(c.status == DIFFERS for c in checks)
            click.echo(f"{path}: {'DIFFERS' if bad else 'verifies'} ({len(checks)} checks)")
            for check in checks:
                if not quiet or check.status != "ok":
                    click.echo(f"  {check.line()}")
    if differs:
        sys.exit(1)


@cli.command(context_settings=CONTEXT)
@click.argument("record", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--data-root",
    type=click.Path(path_type=Path),
    help="Dataset directory (default: $BIOBENCH_DATA/<name>, then ~/.local/share).",
)
@click.option(
    "--tolerance",
    type=click.FloatRange(0),
    help="Largest absolute difference accepted (default: 0 on the record's environment, "
    "1e-3 elsewhere).",
)
@click.pass_context
def reproduce(ctx: click.Context, record: Path, data_root: Path | None, tolerance: float) -> None:
    """Re-run a record's configuration and seed; compare every metric with the record.

    Runs in a temporary folder (nothing under the record's folder changes) with the record's
    thread count.  Exit 0 when every metric agrees within the tolerance, 1 otherwise.

    \b
    Examples:
      biobench reproduce leaderboards/runs/quick/case1-none/seed-0.json
    """
    from tabulate import tabulate

    from biobench.reproduce import reproduce as run_again

    result = run_again(record, _manager(ctx), data_root=data_root, tolerance=tolerance)
    for note in result.notes:
        click.echo(f"note: {note}")
    rows = [
        [c.metric, c.recorded, c.reproduced, "DIFFERS" if c.differs(result.tolerance) else "ok"]
        for c in result.comparisons
    ]
    click.echo(tabulate(rows, headers=["metric", "record", "reproduced", ""], floatfmt=".10g"))
    verdict = "reproduced" if result.ok else "NOT reproduced"
    click.echo(f"{verdict} (tolerance {result.tolerance:g}): {record}")
    if not result.ok:
        ctx.exit(1)


@cli.command("export", context_settings=CONTEXT)
@click.argument("record", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", required=True, help="onnx (runs in onnxruntime) or torchscript.")
@click.pass_context
def export_model(ctx: click.Context, record: Path, out: Path, fmt: str) -> None:
    """Export a run's trained model as an ONNX or TorchScript embedder.

    Rebuilds the model from the record's configuration, loads the weights the run saved
    (seed-N-model.safetensors beside the record, checked against the record's sha256) and
    writes the embedding the protocol evaluated to OUT, with the preprocessing it needs in
    OUT.json.  The file is then read back through the onnx:/torchscript: backbone and its
    embeddings compared with the model's (1e-5).  Evaluate it with
    --backbone onnx:OUT (or torchscript:OUT).

    \b
    Examples:
      biobench export leaderboards/runs/orl/case1-none/seed-0.json --format onnx orl.onnx
    """
    from biobench.runexport import export_record

    if not record.is_file():
        raise BiobenchError(f"record {record} does not exist")
    result = export_record(record, fmt, out, _manager(ctx))
    for path in result.files:
        click.echo(f"wrote {path}")
    click.echo(
        f"embedding '{result.embedding}' ({result.dim}-d); read back through {fmt}:{out}, "
        f"largest relative difference {result.max_difference:.2g}"
    )


def main() -> None:
    cli(prog_name="biobench")
