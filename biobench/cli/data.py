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


def _open(
    pm: Any, name: str, options: dict[str, Any], image_size: int, data_root: Path | None
) -> Any:
    """The dataset as a run opens it (:func:`biobench.data.open_dataset`): same context, same
    checks and the same wording of every error."""
    from biobench.context import default_cache_dir
    from biobench.data import open_dataset

    return open_dataset(
        pm,
        {"name": name, "options": options},
        image_size,
        data_root=data_root,
        cache_dir=default_cache_dir(),
        progress=sys.stderr.isatty(),
    )


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
@click.option("--identities", default=6, show_default=True, help="Identities (rows).")
@click.option("--per-identity", default=8, show_default=True, help="Images per identity (columns).")
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

    opened = _open(_manager(ctx), name, _options(option_pairs), image_size, data_root)
    started = time.perf_counter()
    click.echo(
        f"loading dataset '{name}' at {image_size} px (a first load can take a minute)", err=True
    )
    loaded, _ = opened.load()
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
    from biobench.data import plugin_call

    pm = _manager(ctx)
    opened = _open(pm, name, _options(option_pairs), image_size, data_root)
    entry, _ = pm.get("exporter", fmt)
    loaded, _ = opened.load()
    plugin_call(f"exporter '{fmt}' ({entry.origin})", entry.factory, loaded, out)
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
    opened = _open(_manager(ctx), name, {}, image_size, data_root)
    if not hasattr(opened.dataset, "prepare"):
        raise BiobenchError(f"dataset '{name}' has no preparation step")
    target = root or opened.context.roots[0]
    report = opened.call(
        "prepare",
        target,
        source=source,
        subset=subset,
        progress=opened.context.progress,
        **_options(option_pairs),
    )
    click.echo(report or f"prepared {name} in {target}")


@data.command("check", context_settings=CONTEXT)
@_dataset_options
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
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
    opened = _open(_manager(ctx), name, _options(option_pairs), image_size, data_root)
    if hasattr(opened.dataset, "check"):
        report = opened.call("check", opened.context)
    else:
        loaded, _ = opened.load()
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
