"""The protocol schema: every key a protocol file may hold, its type and range, and defaults.

Unknown keys, wrong types and out-of-range numbers are :class:`ProtocolError` naming the file
and the key.  :func:`validate` walks a value against a schema node.
"""

from __future__ import annotations

from difflib import get_close_matches
from typing import Any

from biobench.errors import ProtocolError
from biobench.options import out_of_range

#: The image preprocessing of a protocol that names none: biobench's original behaviour (the
#: face box when the dataset has one, else the whole image; centre square; bicubic resize).
DEFAULT_PREPROCESSING = "box"

# A schema node is: a type (str, int, float, bool), a tuple of allowed literal strings,
# ("list", node), ("dict", node) for free keys with typed values, ("table", {key: node}) for a
# strict table, "any" for a free-form options table, or ("union", node, node).
ANY = "any"


def _table(**keys: Any) -> tuple[str, dict[str, Any]]:
    return ("table", keys)


def _number(
    kind: type,
    low: float | None = None,
    high: float | None = None,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> tuple[Any, ...]:
    """A number of ``kind`` within bounds (a range node of the schema)."""
    return ("range", kind, low, high, low_open, high_open)


POSITIVE_INT = _number(int, 1)
NON_NEGATIVE_INT = _number(int, 0)
#: Seeds are unsigned 32-bit integers (numpy's and the split's generators take no more).
MAX_SEED = 2**32 - 1
SEED = _number(int, 0, MAX_SEED)
#: Memory-sized dimensions are bounded, so that a typo (``image_size = 1000000000``) is one line
#: naming the key instead of an allocation failure deep inside a plugin.
MAX_IMAGE_SIZE = 4096
MAX_HIDDEN = 65536


SPLIT = _table(
    rule=("per_identity", "dataset", "file"),
    train_fraction=_number(float, 0, 1, low_open=True, high_open=True),
    seed=SEED,
    path=str,
)
DATASET = _table(
    name=str,
    options=ANY,
    attributes=("union", ("all", "identity", "none"), ("list", str)),
    fusion_attributes=("union", ("identity", "all", "none"), ("list", str)),
    split=SPLIT,
    min_images_per_identity=POSITIVE_INT,
    max_identities=_number(int, 2),
    # Image preprocessing from the "preprocessing" registry; absent means "box" with no
    # options (DEFAULT_PREPROCESSING), kept out of DEFAULTS so that the
    # configuration hash of every run written before the key existed is unchanged.
    preprocessing=str,
    preprocessing_options=ANY,
)
#: Where a run's initial weights come from: another run of the protocol (same seed) or a local
#: safetensors file (relative to the protocol file).  Parameters are copied by name and shape.
INIT = _table(from_run=str, weights=str)
MODEL = _table(
    init=INIT,
    backbone=str,
    backbone_options=ANY,
    image_size=_number(int, 1, MAX_IMAGE_SIZE),
    hidden=_number(int, 1, MAX_HIDDEN),
    dropout=_number(float, 0, 1, high_open=True),
    fusion=str,
    fusion_options=ANY,
)
TRAINING = _table(
    epochs=POSITIVE_INT,
    batch_size=POSITIVE_INT,
    optimizer=str,
    optimizer_options=ANY,
    tasks=("list", ("attributes", "identity")),
    task_weights=("dict", _number(float, 0)),
    augment=bool,
    checkpoint=bool,
)
EVALUATION = _table(
    batch_size=POSITIVE_INT,
    embedding=("identity_hidden", "trunk"),
)
METRIC = ("union", str, _table(name=str, options=ANY))
#: The tables a run cell may set, at the top of a protocol (defaults) or in ``[[runs]]``.
CELL = {
    "dataset": DATASET,
    "model": MODEL,
    "training": TRAINING,
    "evaluation": EVALUATION,
    "metrics": ("list", METRIC),
    "seeds": ("list", SEED),
}
RUN = _table(label=str, description=str, requires=("list", str), **CELL)
REPORTED = _table(
    label=str,
    source=str,
    notes=str,
    backbone=str,
    fusion=str,
    tasks=("list", str),
    metrics=("dict", float),
)
#: A claim the protocol's runs are meant to support: run ``better`` beats run ``than`` on
#: ``metric`` (evaluated by :mod:`biobench.claims`; it changes no number).
CLAIM = _table(metric=str, better=str, than=str, note=str)
PROTOCOL = _table(
    name=str,
    version=int,
    description=str,
    citation=str,
    extends=str,
    # The metric value names a reader looks at first (``["top1_accuracy"]``): boards and the
    # site show them right after the label, with their intervals (see biobench.board).
    headline=("list", str),
    **CELL,
    runs=("list", RUN),
    reported=("list", REPORTED),
    claims=("list", CLAIM),
)
REQUIRED = ("name", "version", "dataset")

DEFAULTS: dict[str, Any] = {
    "description": "",
    "citation": "",
    "dataset": {
        "options": {},
        "attributes": "all",
        "fusion_attributes": "identity",
        "split": {"rule": "per_identity", "train_fraction": 0.8, "seed": 0},
        "min_images_per_identity": 2,
    },
    "model": {
        "backbone": "vgg16",
        "backbone_options": {},
        "image_size": 64,
        "hidden": 4096,
        "dropout": 0.0,
        "fusion": "none",
        "fusion_options": {},
    },
    "training": {
        "epochs": 10,
        "batch_size": 32,
        "optimizer": "modified_adamax",
        "optimizer_options": {},
        "tasks": ["attributes", "identity"],
        "task_weights": {},
        "augment": False,
        "checkpoint": True,
    },
    "evaluation": {"batch_size": 256, "embedding": "identity_hidden"},
    "metrics": ["identification", "attributes"],
    "seeds": [0],
}

#: What each key means, by its dotted path (``[]`` marks the entries of a list: ``runs[].label``).
#: ``[[runs]]`` entries may also set every key of the run-cell tables (``CELL``), described once
#: under their top-level path.  The protocol reference (docs/protocol-reference.md) is generated
#: from this table, the schema above and ``DEFAULTS`` (``python -m biobench.docsgen``); a test
#: requires a description for every key of the schema and no other.
DESCRIPTIONS: dict[str, str] = {
    "name": "Required. The protocol's name: what `--protocol` and the leaderboard files use.",
    "version": "Required. Bump it whenever a change could move a number: records of another "
    "version are stale and left out of the leaderboard.",
    "description": "One line shown by `biobench protocols list` and on the boards.",
    "citation": "Where the protocol comes from (a paper, a benchmark).",
    "extends": "Another protocol (a path relative to this file, or an installed protocol's "
    "name) that this one varies: tables merge key by key, lists are replaced, its `[[runs]]` "
    "are replaced by this file's when it has any. The required keys may then be inherited.",
    "dataset": "Required. The data, its attributes, its split and its image preprocessing.",
    "dataset.name": "Required. A registered dataset (`biobench plugins` lists them).",
    "dataset.options": "Passed to the dataset's factory as keyword arguments, checked against "
    "its signature.",
    "dataset.attributes": "Attributes the attribute branch predicts: `all`, `identity` "
    "(identity-level ones only), `none`, or a list of names.",
    "dataset.fusion_attributes": "Attributes fused into the identity branch: `identity` "
    "(identity-level only, as in the paper), `all`, `none`, or a list of names.",
    "dataset.split": "How images are divided into training and test. The split never depends "
    "on a run's training seed: every seed sees the same images.",
    "dataset.split.rule": "`per_identity`: each identity's images shuffled with `seed`, the "
    "first ceil(train_fraction x n) to training; `dataset`: the dataset's own split; "
    "`file`: a TSV (columns `key`, `split`) named by `path`.",
    "dataset.split.train_fraction": "Share of each identity's images that go to training "
    "(`per_identity`).",
    "dataset.split.seed": "Seed of the `per_identity` shuffle.",
    "dataset.split.path": "The split file of rule `file`, relative to the protocol file.",
    "dataset.min_images_per_identity": "Identities with fewer images are left out.",
    "dataset.max_identities": "Keep only this many identities, the most frequent ones.",
    "dataset.preprocessing": "How a face is cut out of the photo, once per image when the "
    "dataset's cache is built: a name from the `preprocessing` registry (`box`, `none`, "
    f"plugins' own). Absent: `{DEFAULT_PREPROCESSING}` with no options.",
    "dataset.preprocessing_options": "Passed to the preprocessing's factory.",
    "model": "The network: backbone (trunk), fusion, branch widths, initial weights.",
    "model.init": "Where the initial weights come from (exactly one source); tensors are "
    "copied by name and shape and the record keeps what was copied or skipped. Absent: "
    "random initialisation.",
    "model.init.from_run": "Start from the weights of another run of this protocol with the "
    "same seed (run first); a cycle is refused.",
    "model.init.weights": "Start from a local safetensors file, relative to the protocol file "
    "(its sha256 goes into the record).",
    "model.backbone": "A registered backbone (`vgg16`, `timm:<model>`, `onnx:<file>`, a plugin's).",
    "model.backbone_options": "Passed to the backbone's factory, checked against its signature.",
    "model.image_size": "Input size in pixels (square).",
    "model.hidden": "Width of the FC(hidden) layer of each branch.",
    "model.dropout": "Dropout probability in the branches.",
    "model.fusion": "How attribute information joins the identity branch: `none`, "
    "`ground_truth`, `predicted`, `film` or any registered fusion.",
    "model.fusion_options": "Passed to the fusion's factory, checked against its signature.",
    "training": "The training budget and the optimizer.",
    "training.epochs": "Training epochs.",
    "training.batch_size": "Training batch size (the global batch, however many processes).",
    "training.optimizer": "A registered optimizer (`modified_adamax`, `adam`, a plugin's).",
    "training.optimizer_options": "Passed to the optimizer's factory, checked against its "
    "signature.",
    "training.tasks": 'Tasks trained: `["attributes", "identity"]` jointly, '
    '`["attributes"]` the attribute branch alone, `[]` no training (a frozen model '
    "evaluated on its embeddings).",
    "training.task_weights": "Loss weight per task (`attributes`, `identity`); a task not "
    "named weighs 1.0.",
    "training.augment": "Random horizontal flips during training.",
    "training.checkpoint": "Checkpoint every epoch (what `--resume` continues from).",
    "evaluation": "How the test split is evaluated.",
    "evaluation.batch_size": "Evaluation batch size.",
    "evaluation.embedding": "Which features verification and 1:N search use: "
    "`identity_hidden` (the identity branch's hidden layer) or `trunk` (the backbone's).",
    "metrics": "The metrics computed after training: a registered metric's name, or a table "
    "with its name and options.",
    "metrics[].name": "A registered metric (`identification`, `verification`, `attributes`, "
    "`open_set_identification`, a plugin's).",
    "metrics[].options": "Passed to the metric's factory, checked against its signature.",
    "seeds": "Training seeds; each run is trained once per seed. At least one, none twice.",
    "headline": 'The metric value names a reader looks at first (e.g. `["top1_accuracy"]`): '
    "boards and the website show them right after the label, with their 95 % intervals; without "
    "it, each row's first listed metric value.",
    "runs": "The grid: each entry is one run label and may set any key of `dataset`, `model`, "
    "`training`, `evaluation`, `metrics` and `seeds`, merged onto the protocol's.",
    "runs[].label": "Required. The run's name, unique in the protocol: the leaderboard row and "
    "the record folder.",
    "runs[].description": "What the run is, for the boards.",
    "runs[].requires": "Distributions the run needs (optional plugins); without them the run "
    "is skipped with a message.",
    "reported": "Published numbers, shown as `reported` rows beside the measured ones and "
    "never averaged with them.",
    "reported[].label": "The row's label.",
    "reported[].source": "Where the number was published.",
    "reported[].notes": "Anything that makes the number less comparable.",
    "reported[].backbone": "The backbone the publication used; with `fusion` and `tasks`, it "
    "picks the measured rows the number is set against (expected vs measured).",
    "reported[].fusion": "The fusion the publication used (matched like `backbone`).",
    "reported[].tasks": "The tasks the publication trained (matched like `backbone`).",
    "reported[].metrics": "The published values by biobench's metric names, on biobench's "
    "scale (fractions, not percent).",
    "claims": "What the protocol's runs are meant to support, tested on every leaderboard "
    "build (paired bootstrap, Holm-corrected); `claims = []` declares that it makes none.",
    "claims[].metric": "Required. The metric compared.",
    "claims[].better": "Required. The run label that should be better.",
    "claims[].than": "Required. The run label it should beat.",
    "claims[].note": "What the claim says, in words.",
}

_TYPE_NAMES = {str: "a string", int: "an integer", float: "a number", bool: "a boolean"}


def _describe(node: Any) -> str:
    if isinstance(node, type):
        return _TYPE_NAMES[node]
    if isinstance(node, tuple) and node and node[0] == "range":
        _, kind, low, high, low_open, high_open = node
        if high is None:
            return f"{_TYPE_NAMES[kind]} {'>' if low_open else '>='} {low:g}"
        return (
            f"{_TYPE_NAMES[kind]} in {'(' if low_open else '['}{low:g}, {high:g}"
            f"{')' if high_open else ']'}"
        )
    if isinstance(node, tuple) and node and node[0] == "union":
        return " or ".join(_describe(n) for n in node[1:])
    if isinstance(node, tuple) and node and node[0] in ("list", "dict", "table"):
        return {"list": "a list", "dict": "a table", "table": "a table"}[node[0]]
    if isinstance(node, tuple):
        return "one of " + ", ".join(repr(v) for v in node)
    return "a table"


def _type_name(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    for t, name in _TYPE_NAMES.items():
        if isinstance(value, t):
            return name
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a table"
    return type(value).__name__


def validate(value: Any, node: Any, source: str, key: str) -> None:
    """Check ``value`` against schema ``node``; raise :class:`ProtocolError` naming ``key``."""
    if node == ANY:
        if not isinstance(value, dict):
            raise ProtocolError(source, key, f"expected a table, got {_type_name(value)}")
        return
    if isinstance(node, type):
        ok = isinstance(value, node) and not (node is not bool and isinstance(value, bool))
        if node is float and isinstance(value, int) and not isinstance(value, bool):
            ok = True
        if not ok:
            raise ProtocolError(
                source, key, f"expected {_describe(node)}, got {_type_name(value)} {value!r}"
            )
        return
    kind = node[0]
    if kind == "range":
        _, number, low, high, low_open, high_open = node
        validate(value, number, source, key)
        if out_of_range(value, low, high, low_open=low_open, high_open=high_open):
            raise ProtocolError(source, key, f"expected {_describe(node)}, got {value!r}")
        return
    if kind == "union":
        errors = []
        for option in node[1:]:
            try:
                validate(value, option, source, key)
                return
            except ProtocolError as exc:
                errors.append(exc)
        raise ProtocolError(source, key, f"expected {_describe(node)}, got {value!r}")
    if kind == "list":
        if not isinstance(value, list):
            raise ProtocolError(source, key, f"expected a list, got {_type_name(value)}")
        for i, item in enumerate(value):
            validate(item, node[1], source, f"{key}[{i}]")
        return
    if kind == "dict":
        if not isinstance(value, dict):
            raise ProtocolError(source, key, f"expected a table, got {_type_name(value)}")
        for k, v in value.items():
            validate(v, node[1], source, f"{key}.{k}")
        return
    if kind == "table":
        if not isinstance(value, dict):
            raise ProtocolError(source, key, f"expected a table, got {_type_name(value)}")
        keys = node[1]
        for k, v in value.items():
            sub = f"{key}.{k}" if key else k
            if k not in keys:
                close = get_close_matches(k, list(keys), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ProtocolError(source, sub, f"unknown key{hint}")
            validate(v, keys[k], source, sub)
        return
    # tuple of literal strings
    if value not in node:
        raise ProtocolError(source, key, f"expected {_describe(node)}, got {value!r}")
