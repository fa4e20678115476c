"""``biobench data``: preview, export, prepare and check datasets."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from biobench.cli.base import CONTEXT, _manager, _options, cli
from biobench.errors import BiobenchError

# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


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
    started = time.perf_counter()
    click.echo(
        f"loading dataset '{name}' at {image_size} px (a first load can take a minute)", err=True
    )
    loaded = _plugin_call(f"dataset '{name}'", dataset.load, data_ctx)
    click.echo(
        f"loaded {len(loaded)} images of {len(loaded.identity_names)} identities in "
        f"{time.perf_counter() - started:.1f} s",
        err=True,
    )
    path = contact_sheet(
        loaded,
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
