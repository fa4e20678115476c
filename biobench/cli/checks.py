"""``biobench score``, ``verify``, ``reproduce`` and ``export``: re-checking recorded runs."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from biobench.cli.base import CONTEXT, _manager, _options, _protocols, cli
from biobench.errors import BiobenchError

# ---------------------------------------------------------------------------------------------
# score
# ---------------------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.argument("score_file", type=click.Path(path_type=Path))
@click.option(
    "--metrics",
    default=None,
    help="Comma-separated metric names, any metric that implements from_trials (built in: "
    "verification, identification, open_set_identification, attributes; default: the metrics "
    "that score the CSV's kind, else verification's).",
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
    "with the expected performance curve; read, FTA rule and convention as SCORE_FILE's.",
)
@click.option(
    "--at-threshold",
    "at_threshold",
    type=float,
    multiple=True,
    metavar="T",
    help="Verification (repeatable): FMR, FNMR, GFAR, GFRR, precision, recall and F1 at the "
    "score threshold T (accept score >= T); open_set_identification: DIR, FPIR and Bob's "
    "recognition rate at T.",
)
@click.option(
    "--beta",
    type=click.FloatRange(min=0, min_open=True),
    multiple=True,
    metavar="B",
    help="Verification (repeatable): the F-score with weight B at each --at-threshold.",
)
@click.option(
    "--curves",
    "curves_dir",
    type=click.Path(path_type=Path),
    default=None,
    metavar="DIR",
    help="Verification: write every ROC, DET (probit too), ROCCH and, with --eval, EPC point "
    "as CSV files in DIR.",
)
@click.option(
    "--duplicates",
    type=click.Choice(["refuse", "first"]),
    default="refuse",
    show_default=True,
    help="A trial repeated in a file: refuse (exit 2, naming the file and line) or keep the "
    "first of each with a note.",
)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def score(
    score_file: Path,
    metrics: str | None,
    option_pairs: tuple[str, ...],
    aggregate: str,
    convention: str,
    eval_file: Path | None,
    at_threshold: tuple[float, ...],
    beta: tuple[float, ...],
    curves_dir: Path | None,
    duplicates: str,
    as_json: bool,
) -> None:
    """Compute metrics from a score file (Bob 4-/5-column or biobench CSV).

    NaN scores are failures to acquire (counted; rejections in the rates, or Bob's pooled FTA
    with --convention bob). Identification files with several rows per (probe, identity) are
    aggregated per identity (--aggregate); a trial repeated in a file is refused unless
    --duplicates first. Notes on what was done go to stderr. With --json, +inf, -inf and NaN
    values are the strings "inf", "-inf" and "nan" (docs/metrics.md).

    \b
    Examples:
      biobench score leaderboards/runs/orl/case1-none/seed-0-scores/verification.csv
      biobench score leaderboards/runs/orl/case1-none/seed-0-scores/identification.scores \\
          --metrics identification -o k=[1,5]
      biobench score my_system.scores --metrics verification --json
      biobench score dev.scores --eval eval.scores --convention bob --curves curves/
      biobench score dev.scores --at-threshold 0.5 --beta 2
      biobench score search.scores --metrics open_set_identification -o fpir=[0.1] \\
          --at-threshold 0.6
    """
    from biobench.numbers import to_json_number
    from biobench.options import as_numbers
    from biobench.rescoring import build_metric, default_metrics, metric_options, score_set_metrics
    from biobench.scores import file_trials, read_scores, repeated_trials
    from biobench.scores.write import write_curves

    pm = _manager(click.get_current_context())
    names = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else None
    options = _options(option_pairs)
    scores = _score_set(score_file, read_scores)
    chosen = names or default_metrics(scores.kind, pm)
    reads = {name: _reads(name, pm) for name in chosen}
    pairs = "pairs" in reads.values()
    searches = "searches" in reads.values()
    asked = [
        flag
        for flag, given in (
            ("--eval", eval_file),
            ("--at-threshold", at_threshold and not searches),
            ("--beta", beta),
            ("--curves", curves_dir),
        )
        if given
    ]
    if asked and not pairs:
        raise BiobenchError(
            f"{', '.join(asked)}: options of metrics that read verification pairs, but "
            f"{score_file} is scored as {', '.join(chosen)}"
        )
    scores, notes = repeated_trials(scores, duplicates, searches)
    # How several rows of one (probe, identity) become one score: a reading rule, not an option
    # of a metric.
    given_aggregate = options.pop("aggregate", None)
    if aggregate == "max" and given_aggregate is not None:
        aggregate = str(given_aggregate)
    if at_threshold:
        given = options.get("thresholds")
        # -o thresholds=... and --at-threshold add up; a bad -o value reads as any option's.
        options["thresholds"] = [
            *([] if given in (None, []) else as_numbers("biobench score", "thresholds", given)),
            *at_threshold,
        ]
    if pairs:
        if convention != "biobench":
            options["convention"] = convention
        if beta:
            options["beta"] = list(beta)
    result = score_set_metrics(scores, chosen, options, aggregate=aggregate, pm=pm)
    outputs = [(name, out.values, out.notes) for name, out in result.items()]
    epc = None
    if eval_file is not None:
        name = next(n for n in chosen if reads[n] == "pairs")
        metric = build_metric(name, metric_options(chosen, options, pm)[name], pm)
        if not callable(getattr(metric, "dev_eval", None)):
            raise BiobenchError(f"--eval: metric '{name}' has no dev_eval")
        evaluation = _score_set(eval_file, read_scores)
        evaluation, eval_notes = repeated_trials(evaluation, duplicates)
        out = metric.dev_eval(
            file_trials(scores, "pairs").pairs,
            file_trials(evaluation, "pairs").pairs,
            (str(scores.where), str(evaluation.where)),
        )
        epc = out.details["epc"]
        outputs.append(("dev_eval", out.values, eval_notes + out.notes))
    if curves_dir is not None:
        written = write_curves(curves_dir, file_trials(scores, "pairs").pairs, epc)
        notes.append(f"curves: wrote {', '.join(str(p) for p in written)}")
    values: dict[str, float] = {}
    for name, got, said in outputs:
        values.update(got)
        notes += [f"{name}: {n}" for n in said]
    if as_json:
        numbers = {k: to_json_number(float(v)) for k, v in values.items()}
        click.echo(
            json.dumps(
                {"file": str(score_file), "values": numbers, "notes": notes},
                indent=2,
                allow_nan=False,
            )
        )
        return
    for note in notes:
        click.echo(f"biobench: note: {note}", err=True)
    for key, value in values.items():
        click.echo(f"{key}\t{value}")


def _reads(name: str, pm: Any) -> str | None:
    """The trials metric ``name`` reads (its factory's ``reads``), ``None`` if it says not."""
    entry, _ = pm.get("metric", name)
    reads = getattr(entry.factory, "reads", None)
    return None if reads is None else str(reads)


def _score_set(path: Path, read: Any) -> Any:
    """The score set of ``path`` (``read``: :func:`biobench.scores.read_scores`), or one error
    naming it."""
    if not path.is_file():
        raise BiobenchError(f"no such score file: {path}")
    return read(path)


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
@click.pass_context
def verify(ctx: click.Context, target: Path, data: Path | None, as_json: bool, quiet: bool) -> None:
    """Recompute a run record's numbers from its score files and check its provenance.

    For each record (a seed-*.json file, or every record under DIR): every metric value from
    the score files with the recorded metric options (agreement: relative 1e-9), the score
    files themselves (a listed file missing without the record saying it was not kept, an
    unlisted file, a link, FIFO or other non-regular file, or two copies of a file with
    different trials fail), the protocol file's sha256, the split sha256, and the distribution
    and version of every component. Each check is ok, DIFFERS (both values, or why) or cannot
    check (why). Exit status 1 when any check differs.

    \b
    Examples:
      biobench verify leaderboards/runs/quick/case1-none/seed-0.json
      biobench verify leaderboards/runs/ --json
    """
    from biobench.verify import CANNOT, DIFFERS, verify_path
    from biobench.verify import as_json as to_json

    pm = _manager(ctx)
    index = _protocols(pm)
    results = verify_path(
        target,
        data,
        protocols=lambda name: index.path(name) if name in index.names() else None,
        pm=pm,
    )
    differs = any(c.status == DIFFERS for checks in results.values() for c in checks)
    if as_json:
        click.echo(json.dumps(to_json(results), indent=2))
    else:
        for path, checks in results.items():
            bad = sum(c.status == DIFFERS for c in checks)
            cannot = sum(c.status == CANNOT for c in checks)
            verdict = "DIFFERS" if bad else "verifies" if not cannot else "no check fails"
            extra = f", {cannot} cannot check" if cannot and not bad else ""
            click.echo(f"{path}: {verdict} ({len(checks)} checks{extra})")
            for check in checks:
                if not quiet or check.status != "ok":
                    click.echo(f"  {check.line()}")
        n_bad = sum(any(c.status == DIFFERS for c in cs) for cs in results.values())
        n_cannot = sum(
            not any(c.status == DIFFERS for c in cs)
            and any(c.status == CANNOT and c.item.startswith("metric ") for c in cs)
            for cs in results.values()
        )
        click.echo(
            f"{len(results)} record(s): {len(results) - n_bad - n_cannot} verify (every metric "
            f"recomputed), {n_cannot} with metrics that cannot be recomputed (not verified), "
            f"{n_bad} DIFFER"
        )
    if differs:
        sys.exit(1)


TRUST_HELP = (
    "Load model files that are programs (TorchScript) named by the record, when their sha256 "
    "is the recorded one; they run their own code.  Never taken from the record."
)


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
    help="Largest absolute difference accepted, for every metric (default: 0 in the record's "
    "environment; elsewhere 3 standard deviations of each metric over the record's seeds, at "
    "least 1e-3).",
)
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write the re-run (record, weights, score files) here (default: a temporary folder, "
    "removed afterwards).  It may not hold the record.",
)
@click.option("--trust-model-code", is_flag=True, help=TRUST_HELP)
@click.pass_context
def reproduce(
    ctx: click.Context,
    record: Path,
    data_root: Path | None,
    tolerance: float,
    output: Path | None,
    trust_model_code: bool,
) -> None:
    """Re-run a record's configuration and seed; compare every metric with the record.

    Runs in a temporary folder, or --output (nothing under the record's folder changes), with
    the record's thread count and CPU math mode.  The protocol is the installed one of the
    record's name when its sha256 matches, else the copy the record carries.  In the record's
    environment every metric must agree exactly; elsewhere every difference that can change
    numbers is named, each metric is judged against 3 standard deviations of it over the
    record's seeds, and the board's claims are said to stand or not.  Exit 0 when every metric
    agrees, 1 otherwise.

    \b
    Examples:
      biobench reproduce leaderboards/runs/quick/case1-none/seed-0.json
      biobench reproduce seed-0.json --output rerun/
    """
    from tabulate import tabulate

    from biobench.reproduce import reproduce as run_again

    result = run_again(
        record,
        _manager(ctx),
        data_root=data_root,
        tolerance=tolerance,
        output=output,
        trust_model_code=trust_model_code,
    )
    for note in result.notes:
        click.echo(f"note: {note}")
    if result.differences:
        click.echo("the environment differs from the record's in what can change numbers:")
        for line in result.differences:
            click.echo(f"  {line}")
    rows = [
        [
            c.metric,
            c.recorded,
            c.reproduced,
            result.tolerance_of(c.metric),
            "DIFFERS" if c.differs(result.tolerance_of(c.metric)) else "ok",
        ]
        for c in result.comparisons
    ]
    headers = ["metric", "record", "reproduced", "tolerance", ""]
    click.echo(tabulate(rows, headers=headers, floatfmt=".10g"))
    if result.verdicts:
        click.echo("the board's claims with the reproduced numbers:")
        for line in result.verdicts:
            click.echo(f"  {line}")
    verdict = "reproduced" if result.ok else "NOT reproduced"
    how = (
        "tolerance per metric: 3 SD over the record's seeds"
        if result.tolerances
        else f"tolerance {result.tolerance:g}"
    )
    click.echo(f"{verdict} ({how}): {record}")
    if output is not None:
        click.echo(f"re-run written under {output}")
    if not result.ok:
        ctx.exit(1)


@cli.command("export", context_settings=CONTEXT)
@click.argument("record", type=click.Path(path_type=Path))
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--format", "fmt", required=True, help="onnx (runs in onnxruntime) or torchscript.")
@click.option("--trust-model-code", is_flag=True, help=TRUST_HELP)
@click.pass_context
def export_model(
    ctx: click.Context, record: Path, out: Path, fmt: str, trust_model_code: bool
) -> None:
    """Export a run's trained model as an ONNX or TorchScript embedder.

    Rebuilds the model from the record's configuration, loads the weights the run saved
    (seed-N-model.safetensors beside the record, checked against the record's sha256) and
    writes the embedding the protocol evaluated to OUT, with the preprocessing it needs in
    OUT.json.  The file is then read back through the onnx:/torchscript: backbone and its
    embeddings compared with the model's (1e-5).  Evaluate it with
    --backbone onnx:OUT (or torchscript:OUT --trust-model-code).  A record whose model is
    itself a model file (onnx:, torchscript:) exports only when that file's sha256 is the
    recorded one (and, for TorchScript, with --trust-model-code).

    \b
    Examples:
      biobench export leaderboards/runs/orl/case1-none/seed-0.json --format onnx orl.onnx
    """
    from biobench.runexport import export_record

    if not record.is_file():
        raise BiobenchError(f"record {record} does not exist")
    result = export_record(record, fmt, out, _manager(ctx), trust_model_code=trust_model_code)
    for path in result.files:
        click.echo(f"wrote {path}")
    click.echo(
        f"embedding '{result.embedding}' ({result.dim}-d); read back through {fmt}:{out}, "
        f"largest relative difference {result.max_difference:.2g}"
    )
