"""Run identity: a run is its resolved configuration, named by a hash of it.

Labels are names for people; the configuration hash is the identity.  Two runs share a hash
exactly when their dataset, model, training, evaluation and metric tables (after ``extends``,
the protocol's defaults, the cell and every command-line override are merged) are equal, so a
record is never overwritten by another configuration and a leaderboard row never averages two.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

#: The tables of a run that define what is computed (not how fast, nor where).
CONFIG_TABLES = ("dataset", "model", "training", "evaluation", "metrics")

#: Hex digits of the hash used in labels and record paths.
SHORT = 8


def canonical_json(obj: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)


def config_hash(run: Mapping[str, Any]) -> str:
    """sha256 (hex) of a run's configuration tables (see :data:`CONFIG_TABLES`).

    ``run`` is a resolved run configuration, for example ``RunSpec.config()`` or the ``run`` table
    of a record (its label, seed and description are not part of the hash).
    """
    missing = [t for t in CONFIG_TABLES if t not in run]
    if missing:
        raise KeyError(f"run configuration lacks {missing}")
    blob = canonical_json({t: run[t] for t in CONFIG_TABLES})
    return hashlib.sha256(blob.encode()).hexdigest()


def variant_label(cell_label: str, digest: str) -> str:
    """The label of a run whose configuration differs from its protocol cell's."""
    return f"{cell_label}.{digest[:SHORT]}"
