"""``biobench run``: a protocol's grid over its seeds (and the torchrun launcher)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from biobench.cli.base import CONTEXT, _manager, _protocols, cli
from biobench.errors import RunFailed

# ---------------------------------------------------------------------------------------------
# run
# ---------------------------------------------------------------------------------------------


def _parse_seeds(text: str | None) -> list[int] | None:
    """``--seeds 0,1,2``: distinct integers >= 0, checked with the options' one wording."""
    if text is None:
        return None
    from biobench.options import parse_numbers

    return parse_numbers("biobench run", "--seeds", text, integer=True, low=0, unique=True)


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
    "--pin-threads/--no-pin-threads",
    default=True,
    show_default=True,
    help="Keep each torch CPU thread on its own core while training and evaluating, when the "
    "threads fill the available cores: much steadier beside other CPU work; results unchanged.",
)
@click.option(
    "--cpu-math",
    type=click.Choice(["native", "avx2", "portable"]),
    default=None,
    help="Which CPU kernels compute the numbers (recorded; reproduce uses the record's): native "
    "= fastest for this processor, exact on the same processor model; avx2 = instruction set "
    "pinned to AVX2; portable = the same numbers on any x86-64 CPU with AVX2, slower. Default: "
    "$BIOBENCH_CPU_MATH, else native.",
)
@click.option(
    "--trust-model-code",
    is_flag=True,
    help="Load model files that are programs (torchscript:); they run their own code. "
    "Data formats (onnx:) need no consent.",
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
    pin_threads: bool,
    cpu_math: str | None,
    trust_model_code: bool,
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
    from biobench.duplicates import merge_duplicate_runs
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
            pin_threads=pin_threads,
            cpu_math=cpu_math,
            label=variant,
            trust_model_code=trust_model_code,
        ),
    )
    for message in dropped_options(protocol, specs, overrides, pm):
        click.echo(f"biobench: warning: {message}", err=True)
    specs, merged = merge_duplicate_runs(specs, base_specs, variant)
    for message in merged:
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
    csv_path = result.leaderboard.get("csv")
    if csv_path is not None and Path(csv_path).exists():
        for line in board_summary(Path(csv_path)):
            click.echo(line)
    click.echo(f"{len(result.records)} run records under {Path(output) / 'runs' / protocol.name}")
    md = result.leaderboard.get("md")
    if md is not None:
        others = len(result.leaderboard) - 1
        click.echo(f"leaderboard: {md} (and {others} more files beside it: CSV, plots)")


def board_summary(csv_path: Path, metrics: int = 2, rows: int = 12) -> list[str]:
    """A few lines for the end of a run: each measured row's label, seeds and its first
    ``metrics`` metrics (mean ± standard deviation over seeds), not the whole board."""
    import csv

    with open(csv_path, newline="", encoding="utf-8") as handle:
        table = [r for r in csv.DictReader(handle) if r.get("kind", "measured") == "measured"]
    if not table:
        return []
    names = [c[: -len("_mean")] for c in table[0] if c.endswith("_mean")]
    width = max(len(r["label"]) for r in table)
    lines = []
    for row in table[:rows]:
        shown = [n for n in names if row.get(f"{n}_mean")][:metrics]
        values = "  ".join(
            f"{n} {float(row[n + '_mean']):.4f} ± {float(row.get(n + '_std') or 0):.4f}"
            for n in shown
        )
        lines.append(f"  {row['label']:<{width}}  {row.get('n_seeds', '?')} seeds  {values}")
    if len(table) > rows:
        lines.append(f"  ... and {len(table) - rows} more rows")
    return lines


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
