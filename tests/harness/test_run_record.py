"""One typed run record: :class:`biobench.records.RunRecord` reads and writes every record.

- a tiny run writes the records it wrote before the record was typed (``tests/data/records``,
  made by the engine of commit a13fcae: same keys, same values; only timings, dates and the
  machine's environment are left out), plus the one key added since, ``proportions`` (the
  values a board keeps inside [0, 1]), with nothing else changed;
- every committed record reads and writes back byte-identical;
- what is not a usable record is refused with the file and the key named;
- schema-1 records read through the one adapter, and the raw JSON is never changed.
"""

from __future__ import annotations

import copy
import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

import biobench
from biobench.errors import BiobenchError
from biobench.identity import config_hash
from biobench.records import NotARunRecord, RunRecord

REPO = Path(__file__).resolve().parents[2]
GOLDEN = REPO / "tests" / "data" / "records" / "tiny"

#: The protocol of the golden records: the testing kit's tiny components, every built-in metric
#: family that writes score files, an attribute-only cell and a cell starting from another's
#: weights (``artifacts.init``).
PROTOCOL = """\
name = "tiny"
version = 1
seeds = [0]
metrics = ["identification", "attributes", "verification"]

[dataset]
name = "tiny"

[model]
backbone = "tiny_cnn"
image_size = 16
hidden = 32

[training]
epochs = 2
batch_size = 16
optimizer = "adam"
optimizer_options = { lr = 0.01 }

[[runs]]
label = "none"
model.fusion = "none"

[[runs]]
label = "attributes-alone"
training.tasks = ["attributes"]

[[runs]]
label = "from-none"
model.fusion = "none"
model.init = { from_run = "none" }
"""
LABELS = ("none", "attributes-alone", "from-none")


def normalised(record: dict[str, Any]) -> dict[str, Any]:
    """A record without what differs between two runs of one configuration on one machine
    (``timings``, ``created``) or between machines (``environment``): their keys are kept, their
    values are ``None``; the version of biobench's own components reads ``<biobench>``."""
    out = copy.deepcopy(record)
    for key in ("timings", "environment"):
        out[key] = dict.fromkeys(out[key])
    out["created"] = None

    def versions(node: Any) -> None:
        if isinstance(node, dict):
            if (
                node.get("distribution") == "biobench"
                and node.get("version") == biobench.__version__
            ):
                node["version"] = "<biobench>"
            for value in node.values():
                versions(value)
        elif isinstance(node, list):
            for value in node:
                versions(value)

    versions(out["components"])
    versions(out["data"])
    return out


def run_tiny(run_cli: Any, folder: Path) -> Path:
    """The golden protocol run once (one thread: the digits do not depend on the core count)."""
    protocol = folder / "protocol" / "tiny.toml"
    protocol.parent.mkdir(parents=True)
    protocol.write_text(PROTOCOL, encoding="utf-8")
    out = folder / "out"
    result = run_cli("run", "--protocol", str(protocol), "--output", str(out), "--threads", "1",
                     "--no-progress")  # fmt: skip
    assert result.exit_code == 0, result.output
    return out / "runs" / "tiny"


def _differences(a: Any, b: Any, where: str, floats: list[str]) -> list[str]:
    """Where ``a`` and ``b`` differ: keys (in order), types, lengths, values; floats that differ
    within 1e-6 (relative) are listed in ``floats`` instead (another CPU, other last digits)."""
    if isinstance(a, dict) and isinstance(b, dict):
        if list(a) != list(b):
            return [f"{where}: keys {list(a)} != {list(b)}"]
        return [d for k in a for d in _differences(a[k], b[k], f"{where}.{k}", floats)]
    if isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            return [f"{where}: {len(a)} items != {len(b)}"]
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _differences(x, y, f"{where}[{i}]", floats)
        ]
    if isinstance(a, float) and isinstance(b, float) and a != b:
        if math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9):
            floats.append(where)
            return []
    if type(a) is not type(b) or (a != b and not (a != a and b != b)):
        return [f"{where}: {a!r} != {b!r}"]
    return []


def test_a_tiny_run_writes_the_records_it_wrote_before(run_cli: Any, tmp_path: Path) -> None:
    """Numbers and record layout do not change with the record's assembly moving out of the
    engine: the same keys in the same order, the same values (timings, dates and the machine
    aside).  On another CPU the last digits of a float may differ, and so then may the trained
    weights' sha256: they are compared exactly when every float is."""
    runs = run_tiny(run_cli, tmp_path)
    for label in LABELS:
        text = (runs / label / "seed-0.json").read_text(encoding="utf-8")
        got = normalised(json.loads(text))
        want = json.loads((GOLDEN / f"{label}.json").read_text(encoding="utf-8"))
        floats: list[str] = []
        problems = _differences(want, got, label, floats)
        if floats:  # another machine's digits: the weights differ with them
            problems = [p for p in problems if not (".artifacts." in p and ".sha256:" in p)]
        assert not problems, "\n".join(problems)
        assert RunRecord.read(runs / label / "seed-0.json").data == json.loads(text)


def test_every_committed_record_reads_and_writes_back_byte_identical(tmp_path: Path) -> None:
    paths = sorted((REPO / "leaderboards" / "runs").rglob("seed-*.json"))
    assert len(paths) > 10
    for i, path in enumerate(paths):
        record = RunRecord.read(path, REPO / "leaderboards")
        assert record.path == path.relative_to(REPO / "leaderboards").as_posix()
        assert record.label == path.parent.name and record.seed == int(path.stem[len("seed-") :])
        assert record.protocol_name == path.parents[1].name
        assert len(record.config_hash) == 64 and record.reports is not None
        copy_path = tmp_path / f"{i}.json"
        record.write(copy_path)
        assert copy_path.read_bytes() == path.read_bytes(), path


def _write(path: Path, data: Any) -> Path:
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


GOOD = {"schema": 2, "run": {"label": "a", "seed": 0}, "metrics": {"x": 0.5}}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("{not json", "is not readable JSON"),
        ({**GOOD, "run": {"seed": 0}}, "lacks run.label or run.seed"),
        ({**GOOD, "run": []}, "lacks run.label or run.seed"),
        ({**GOOD, "metrics": {"x": "high"}}, "malformed: metrics.x = 'high' is not a number"),
        (
            {**GOOD, "run": {"label": "a", "seed": "0"}},
            "malformed: run.seed = '0' is not an integer",
        ),
        ({**GOOD, "losses": {"identity": [1.0, None]}}, r"losses.identity\[1\] = None is not a"),
        ({**GOOD, "headline": "x"}, "'headline' is not a list of metric names"),
    ],
)
def test_what_is_not_a_usable_record_is_refused_by_name(
    tmp_path: Path, data: Any, message: str
) -> None:
    path = _write(tmp_path / "seed-0.json", data)
    with pytest.raises(BiobenchError, match=message) as caught:
        RunRecord.read(path)
    assert str(path) in str(caught.value) and not isinstance(caught.value, NotARunRecord)


def test_a_table_a_reader_needs_is_required_by_name(tmp_path: Path) -> None:
    path = _write(tmp_path / "seed-0.json", GOOD)
    assert RunRecord.read(path, require=("metrics",)).metrics == {"x": 0.5}
    with pytest.raises(BiobenchError, match=r"seed-0\.json: not a run record \(no 'run.model'"):
        RunRecord.read(path, require=("run.model",))


def test_json_that_is_not_a_record_is_told_apart(tmp_path: Path) -> None:
    """Score metadata beside the records is skipped by folder readers, never taken for a run."""
    from biobench.board import load_records

    folder = tmp_path / "runs" / "p" / "a"
    folder.mkdir(parents=True)
    _write(folder / "seed-0.json", GOOD)
    _write(folder / "metadata.json", {"protocol": "p", "run": "a"})
    with pytest.raises(NotARunRecord, match="not a run record"):
        RunRecord.read(folder / "metadata.json")
    (record,) = load_records(tmp_path / "runs", tmp_path)
    assert record.path == "runs/p/a/seed-0.json"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_unopened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "seed-0.json")
    with pytest.raises(BiobenchError, match="is not a regular file; refused"):
        RunRecord.read(tmp_path / "seed-0.json")


def test_schema_1_records_read_through_the_adapter(tmp_path: Path) -> None:
    run = {
        "label": "case1",
        "seed": 3,
        "dataset": {"name": "tiny"},
        "model": {"backbone": "tiny_cnn"},
        "training": {"epochs": 1},
        "evaluation": {},
        "metrics": [],
    }
    data = {
        "schema": 1,
        "protocol": {"path": "C:\\old\\protocols\\quick.toml", "version": 1},
        "run": run,
        "metrics": {"top1_accuracy": 0.5, "majority_baseline_accuracy": 0.25},
        "details": {
            "identification": {"cmc": {"rank": [1, 2], "accuracy": [0.5, 1.0]}},
            "attributes": {
                "per_attribute": [
                    {"attribute": "Male", "identity_attribute": True, "n": 4, "accuracy": 0.75,
                     "balanced_accuracy": 0.75, "majority_baseline_accuracy": 0.5,
                     "positive_rate": 0.5}
                ]
            },
        },
    }  # fmt: skip
    record = RunRecord.read(_write(tmp_path / "seed-3.json", data))
    raw = copy.deepcopy(record.data)
    assert record.protocol_name == "quick" and record.version == 1
    assert record.protocol_label == "case1" and record.seed == 3
    assert record.config_hash == config_hash(run)
    (cmc,) = record.curves("cmc")
    assert cmc.source == "identity_head" and list(cmc.y) == [0.5, 1.0]
    assert [a.attribute for a in record.per_attribute()] == ["Male"]
    assert record.reference_values == {"majority_baseline_accuracy"}
    assert record.data == raw and "protocol_label" not in record.run  # never rewritten
    # A schema-2 record's own identity is taken as recorded.
    data2 = {**data, "schema": 2, "run": {**run, "protocol_label": "cell", "config_hash": "f" * 64}}
    record2 = RunRecord.read(_write(tmp_path / "seed-4.json", data2))
    assert (record2.protocol_label, record2.config_hash) == ("cell", "f" * 64)
