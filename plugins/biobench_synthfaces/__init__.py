"""biobench_synthfaces: the embedded synthetic face dataset ``synthfaces``.

Procedurally rendered faces with identity-level attributes (``Male``, ``White``, ``Black_Hair``,
``Big_Nose``, ...), per-image attributes (``Eyeglasses``, ``Smiling``, ...), identity traits that
no attribute names, and per-image nuisances.  It needs no download, which makes it the default
demo (``make demo``) and the workhorse of the test suite.  Registered under the ``biobench``
entry-point group exactly as a third-party dataset plugin would be.
"""

from __future__ import annotations

from typing import Any

from biobench.api import hookimpl


@hookimpl
def biobench_register_datasets(register: Any) -> None:
    # Imported here, not at module import: loading the plugin must stay free of side effects,
    # and the dataset module pulls in numpy only (torch-dependent imports happen in load()).
    from biobench_synthfaces.dataset import SynthFaces

    register(
        "synthfaces",
        SynthFaces,
        description="synthetic faces: 15 identity + 4 per-image attributes (no download)",
    )
