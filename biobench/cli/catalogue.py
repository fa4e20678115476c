"""``biobench plugins`` and ``biobench protocols``: what is installed and what can run."""

from __future__ import annotations

import json
import sys
import textwrap
from typing import Any

import click

from biobench.cli.base import CONTEXT, _manager, _protocols, cli
from biobench.errors import BiobenchError

# ---------------------------------------------------------------------------------------------
# plugins
# ---------------------------------------------------------------------------------------------


@cli.command(context_settings=CONTEXT)
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
@click.pass_context
def plugins(ctx: click.Context, as_json: bool) -> None:
    """List every plugin: distribution, version, hooks, registered names, errors.

    A plugin whose declared protocol directories do not exist or hold no *.toml file gets a
    warning line (and a "warnings" list in --json).

    \b
    Examples:
      biobench plugins
      biobench plugins --json
      BIOBENCH_DISABLE_PLUGIN_AUTOLOAD=1 biobench -p my_plugin plugins
    """
    pm = _manager(ctx)
    listing = pm.describe()
    trouble = any(p.get("broken") or p.get("collisions") for p in listing)
    for p in listing:
        if p.get("warnings"):
            # A warning, not trouble: the plugin's components work; its protocols are missing.
            click.echo(
                f"biobench: warning: plugin '{p['name']}': {'; '.join(p['warnings'])}", err=True
            )
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
            description = textwrap.shorten(" ".join(p.description.split()), 72, placeholder=" …")
            rows.append([name, p.version, len(p.data.get("runs") or [1]), description])
        except BiobenchError as exc:
            rows.append([name, "?", "?", f"INVALID: {exc}"])
    click.echo(tabulate(rows, headers=["protocol", "version", "runs", "description"]))


@protocols.command("show", context_settings=CONTEXT)
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print the resolved protocol as JSON.")
@click.pass_context
def protocols_show(ctx: click.Context, name: str, as_json: bool) -> None:
    """Show a protocol as TOML with `extends` and every default resolved: each run's complete
    configuration (what its configuration hash covers), its seeds, and the protocol's claims.

    \b
    Examples:
      biobench protocols show quick
      biobench protocols show quick --json
    """
    p = _protocols(_manager(ctx)).load(name)
    resolved = resolved_protocol(p)
    if as_json:
        click.echo(json.dumps(resolved, indent=2))
        return
    import tomli_w

    click.echo(f"# {p.name} v{p.version}, from {p.path}\n# sha256 of that file: {p.sha256}\n")
    click.echo(tomli_w.dumps(resolved), nl=False)


def resolved_protocol(p: Any) -> dict[str, Any]:
    """The protocol's top-level keys and every run resolved (no internal keys, no nulls)."""

    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {str(k): clean(v) for k, v in value.items() if v is not None}
        if isinstance(value, list | tuple):
            return [clean(v) for v in value if v is not None]
        return value

    top = {
        k: p.data[k]
        for k in ("name", "version", "description", "citation", "headline")
        if k in p.data
    }
    runs = [
        {"label": spec.label, "description": spec.description, "seeds": list(spec.seeds),
         **spec.config()}
        for spec in p.runs()
    ]  # fmt: skip
    out = {**top, "runs": runs}
    if p.data.get("claims"):
        out["claims"] = p.data["claims"]
    return clean(out)


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
