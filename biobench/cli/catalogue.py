"""``biobench plugins`` and ``biobench protocols``: what is installed and what can run."""

from __future__ import annotations

import json
import sys

import click

from biobench.cli import CONTEXT, _manager, _protocols, cli
from biobench.errors import BiobenchError

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
@click.option(
    "--trust-model-code",
    is_flag=True,
    help="Load model files that are programs (torchscript:); they run their own code.",
)
@click.pass_context
def protocols_validate(
    ctx: click.Context, targets: tuple[str, ...], trust_model_code: bool
) -> None:
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
            pm,
            RunOptions(
                device="cpu",
                progress=sys.stderr.isatty(),
                log=lambda m: None,
                trust_model_code=trust_model_code,
            ),
        )
        checks = preflight(run_ctx, p, p.runs(), DataCache(run_ctx), need_data=False)
        notes = sorted({n for c in checks for n in c.notes})
        state = "ok" if all(c.data_checked for c in checks) else "ok without data"
        click.echo(f"{target}: {state} ({p.name} v{p.version}, {len(p.runs())} runs checked)")
        for note in notes:
            click.echo(f"  {note}")
