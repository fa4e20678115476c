"""The ``biobench`` command group, its error handling and the helpers its subcommands share.

The subcommand modules (:mod:`biobench.cli.boards`, ...) import the group from here, not from
the package, so that the package imports them without an import cycle.
"""

from __future__ import annotations

import os
from typing import Any

import click

from biobench import __version__
from biobench.errors import BiobenchError, RunFailed

#: Set to see the Python traceback of an unexpected error instead of one line.
TRACEBACK_ENV = "BIOBENCH_TRACEBACK"
CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


class BiobenchGroup(click.Group):
    """Turns biobench's exceptions into one-line messages and exit statuses."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        try:
            return super().parse_args(ctx, args)
        except click.UsageError as exc:
            _usage_error(ctx, exc)
            raise  # pragma: no cover - _usage_error exits

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            _usage_error(ctx, exc)
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


def _usage_error(ctx: click.Context, exc: click.UsageError) -> None:
    """A usage error (an unknown option, ``--jobs 0``) as one line, exit status 2; a command
    called without arguments still shows its help."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):
        raise exc
    path = (exc.ctx or ctx).command_path
    message = " ".join(exc.format_message().split())
    click.echo(f"biobench: error: {message} (see '{path} --help')", err=True)
    ctx.exit(2)


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


def _options(pairs: tuple[str, ...]) -> dict[str, Any]:
    from biobench.protocol import parse_value

    out: dict[str, Any] = {}
    for text in pairs:
        key, sep, raw = text.partition("=")
        if not sep or not key.strip():
            raise BiobenchError(f"-o: expected key=value, got {text!r}")
        out[key.strip()] = parse_value(raw)
    return out


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


def main() -> None:
    cli(prog_name="biobench")
