"""biobench_metrics: the built-in metric plugins.

Registered under the ``biobench`` entry-point group as ``metrics``, exactly as a third-party
plugin would be.  Importing this module has no side effects; the metric classes are imported
only when the registry is built.
"""

from __future__ import annotations

from biobench import hookimpl
from biobench.hookspecs import Register


@hookimpl
def biobench_register_metrics(register: Register) -> None:
    """Register identification, open_set_identification, verification and attributes."""
    from biobench_metrics.metrics import METRICS

    for name, cls in METRICS.items():
        doc = (cls.__doc__ or "").strip().split("\n")[0]
        register(name, cls, description=doc)
