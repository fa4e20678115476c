"""The protocol files shipped with biobench, offered through ``biobench_protocol_dirs``.

This directory is installed as the package ``biobench_protocols`` and registered under the
``biobench`` entry-point group like any plugin; a third-party plugin ships protocols the same way.
"""

from __future__ import annotations

from pathlib import Path

from biobench import hookimpl


@hookimpl
def biobench_protocol_dirs() -> list[Path]:
    return [Path(__file__).parent]
