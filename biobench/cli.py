"""The ``biobench`` command line.

Exit status: 0 on success; 2 on bad usage or bad input (one line, no traceback, nothing written);
1 when a run fails after it started (the message says what was kept).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from biobench import __version__
from biobench.errors import BiobenchError, RunFailed

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


def _manager(ctx: click.Context) -> Any:
    from biobench.plugins import PluginManager

    obj = ctx.find_root().obj or {}
    return PluginManager(extra_modules=obj.get("plugins", ()), block=obj.get("block", ()))


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
@click.option("--resume", is_flag=True, help="Continue interrupted runs from their checkpoints.")
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
    from biobench.protocol import parse_override
    from biobench.runtime import Accel

    pm = _manager(ctx)
    protocol = _protocols(pm).load(protocol_name)
    overrides = [parse_override(s) for s in sets]
    for key, value in (
        ("dataset.name", dataset),
        ("model.backbone", backbone),
        ("model.fusion", fusion),
        ("training.optimizer", optimizer),
    ):
        if value:
            overrides.append((key, value))
    labels = [s.strip() for s in only.split(",")] if only else None
    specs = protocol.runs(overrides, _parse_seeds(seeds), labels)
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
        ),
    )
    result = engine.run_protocol(protocol, specs)
    if not engine.dist.is_main:
        return
    if dry_run:
        click.echo("dry run: everything resolved; nothing was written")
        return
    for warning in result.warnings:
        click.echo(f"biobench: warning: {warning}", err=True)
    md = result.leaderboard.get("md")
    if md is not None and Path(md).exists():
        click.echo(Path(md).read_text(encoding="utf-8"))
    click.echo(f"{len(result.records)} run records under {Path(output) / 'runs' / protocol.name}")
    for kind, path in sorted(result.leaderboard.items()):
        click.echo(f"leaderboard ({kind}): {path}")


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
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    from tabulate import tabulate

    rows = []
    for p in listing:
        registered = "; ".join(f"{k}: {', '.join(v)}" for k, v in p.get("registered", {}).items())
        status = f"BROKEN: {p['error']}" if p.get("broken") else registered or "(nothing)"
        dist = f"{p.get('distribution') or '-'} {p.get('version') or ''}".strip()
        rows.append([p["name"], dist, status])
    click.echo(tabulate(rows, headers=["plugin", "distribution", "registered"]))


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
    """Validate protocol files or names: schema, component names and options."""
    pm = _manager(ctx)
    index = _protocols(pm)
    for target in targets:
        p = index.load(target)
        for spec in p.runs():
            pm.get("dataset", spec.dataset["name"])
            pm.get("backbone", spec.model["backbone"])
            pm.get("fusion", spec.model["fusion"])
            pm.get("optimizer", spec.training["optimizer"])
            for m in spec.metrics:
                pm.get("metric", m["name"])
        click.echo(f"{target}: ok ({p.name} v{p.version}, {len(p.runs())} runs)")


# ---------------------------------------------------------------------------------------------
# leaderboard
# ---------------------------------------------------------------------------------------------


@cli.group(context_settings=CONTEXT)
def leaderboard() -> None:
    """Rebuild leaderboards from run records."""


@leaderboard.command("build", context_settings=CONTEXT)
@click.option(
    "--protocol",
    "protocol_name",
    help="Only this protocol (default: every protocol with run records under OUTPUT/runs).",
)
@click.option(
    "--output", type=click.Path(path_type=Path), default=Path("leaderboards"), show_default=True
)
@click.pass_context
def leaderboard_build(ctx: click.Context, protocol_name: str | None, output: Path) -> None:
    """Rebuild OUTPUT/<protocol>.csv and .md from OUTPUT/runs/<protocol>/.

    \b
    Examples:
      biobench leaderboard build
      biobench leaderboard build --protocol quick --output results/
    """
    from biobench import leaderboard as lb

    index = _protocols(_manager(ctx))
    names = (
        [protocol_name]
        if protocol_name
        else sorted(d.name for d in (output / "runs").glob("*") if d.is_dir())
    )
    if not names:
        raise BiobenchError(f"no run records under {output / 'runs'}")
    for name in names:
        try:
            protocol = index.load(name)
        except BiobenchError:
            protocol = None  # records of a protocol file given by path: rebuild without it
        paths = lb.build(output, protocol, name)
        for kind, path in sorted(paths.items()):
            click.echo(f"{name} ({kind}): {path}")


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
    from biobench.contracts import DataContext
    from biobench.engine import build_component, data_roots, default_cache_dir

    pm = _manager(ctx)
    dataset, _ = build_component(pm, "dataset", name, options)
    data_ctx = DataContext(
        roots=data_roots(name, data_root),
        cache_dir=default_cache_dir() / "datasets" / name,
        image_size=image_size,
        explicit_root=data_root is not None,
        progress=sys.stderr.isatty(),
    )
    return pm, dataset, data_ctx


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
        dataset.load(data_ctx),
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
    entry.factory(dataset.load(data_ctx), out)
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
    report = dataset.prepare(
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
    """Say what of a dataset is present, what is missing, and its fingerprint."""
    _, dataset, data_ctx = _load_dataset(ctx, name, _options(option_pairs), image_size, data_root)
    if hasattr(dataset, "check"):
        report = dataset.check(data_ctx)
    else:
        loaded = dataset.load(data_ctx)
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


# ---------------------------------------------------------------------------------------------
# score
# ---------------------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.argument("score_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--metrics",
    default="verification",
    show_default=True,
    help="Comma-separated metric names to compute from the scores.",
)
@click.option(
    "-o",
    "--option",
    "option_pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="Metric options (repeatable).",
)
@click.option("--json", "as_json", is_flag=True)
def score(score_file: Path, metrics: str, option_pairs: tuple[str, ...], as_json: bool) -> None:
    """Compute metrics from a score file (Bob 4-column or biobench CSV).

    \b
    Examples:
      biobench score leaderboards/runs/orl/case1-none/seed-0-scores/verification.txt
      biobench score my_system_scores.txt --metrics verification --json
    """
    from biobench.scores import score_file as compute

    names = [m.strip() for m in metrics.split(",") if m.strip()]
    values = compute(score_file, names, _options(option_pairs))
    if as_json:
        click.echo(json.dumps(values, indent=2, default=str))
        return
    for key, value in values.items():
        click.echo(f"{key}\t{value}")


def main() -> None:
    cli(prog_name="biobench")
