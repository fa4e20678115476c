"""Model files and run records are untrusted input.

- a TorchScript model is a program: it runs only with ``--trust-model-code`` (``run``,
  ``run --dry-run``, ``reproduce``, ``export``), and a record's model file only with the sha256
  the record holds;
- no name read from a record becomes a path unchecked; ``reproduce`` writes only under its
  ``--output``; ``leaderboard build --protocol`` takes names only;
- a record carries its protocol: copied to another directory layout it verifies and reproduces.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from biobench.errors import BiobenchError
from biobench.protocol import load_protocol
from biobench.testing import TINY_PROTOCOL

#: One seed, one epoch: the tiny protocol at its cheapest.
PROTOCOL = TINY_PROTOCOL.replace("seeds = [0, 1]", "seeds = [0]").replace(
    "epochs = 2", "epochs = 1"
)
#: A frozen backbone: nothing trained, metrics from the embedding.
FROZEN = ["--set", "training.tasks=[]", "--set", 'metrics=["identification"]']


class Planted(torch.nn.Module):
    """A 'model' whose forward writes a file (maps it shared and overwrites it)."""

    def __init__(self, target: str) -> None:
        super().__init__()
        self.target = target

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        written = torch.from_file(self.target, shared=True, size=4, dtype=torch.uint8)
        written.fill_(65)
        return x.flatten(1)[:, :8] + written.float().sum() * 0


def plant(folder: Path, name: str = "planted.pt") -> tuple[Path, Path]:
    """A TorchScript file and the file its forward writes (absent until it runs)."""
    folder.mkdir(parents=True, exist_ok=True)
    victim = folder / f"{name}.victim"
    model = folder / name
    torch.jit.save(torch.jit.script(Planted(str(victim))), str(model))
    return model, victim


def _record(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))


def _one_line(result: Any) -> str:
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    return result.output


def _run(run_cli: Callable[..., Any], protocol: Path, out: Path, *extra: str) -> Any:
    return run_cli(
        "run", "--protocol", str(protocol), "--runs", "none", "--seeds", "0",
        "--output", str(out), "--no-progress", "--device", "cpu", *extra,
    )  # fmt: skip


@pytest.fixture
def protocol(tmp_path: Path) -> Path:
    path = tmp_path / "proto" / "tiny.toml"
    path.parent.mkdir()
    path.write_text(PROTOCOL, encoding="utf-8")
    return path


# -- model code needs consent -----------------------------------------------------------------


def test_a_planted_torchscript_model_runs_nothing_without_consent(
    tmp_path: Path, protocol: Path, run_cli: Callable[..., Any]
) -> None:
    model, victim = plant(tmp_path / "models")
    out = tmp_path / "out"
    backbone = ["--backbone", f"torchscript:{model}", *FROZEN]
    for extra in (["--dry-run"], []):
        text = _one_line(_run(run_cli, protocol, out, *backbone, *extra))
        assert "--trust-model-code" in text and str(model) in text
        assert not victim.exists() and not out.exists()
    # protocols validate builds every run's model too.
    frozen = protocol.with_name("frozen.toml")
    frozen.write_text(
        PROTOCOL.replace('backbone = "tiny_cnn"', f'backbone = "torchscript:{model}"'),
        encoding="utf-8",
    )
    text = _one_line(run_cli("protocols", "validate", str(frozen)))
    assert "--trust-model-code" in text and not victim.exists()
    # The dry run still checks the file: something that is not a TorchScript archive is named.
    fake = tmp_path / "models" / "fake.pt"
    fake.write_bytes(b"not a model")
    text = _one_line(_run(run_cli, protocol, out, "--backbone", f"torchscript:{fake}", "--dry-run"))
    assert "is not a TorchScript model" in text
    # With consent the file runs (the planted side effect is real: this test can fail).
    result = _run(run_cli, protocol, out, *backbone, "--dry-run", "--trust-model-code")
    assert result.exit_code == 0, result.output
    assert victim.read_bytes() == b"AAAA"


@pytest.fixture
def planted_record(
    tmp_path: Path, protocol: Path, run_cli: Callable[..., Any]
) -> tuple[Path, Path, Path]:
    """A record of a run (with consent) on a planted TorchScript model: (record, model, victim);
    the victim file removed afterwards."""
    model, victim = plant(tmp_path / "models")
    out = tmp_path / "out"
    result = _run(
        run_cli, protocol, out, "--backbone", f"torchscript:{model}", *FROZEN,
        "--label", "planted", "--trust-model-code",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    record = out / "runs" / "tiny" / "none.planted" / "seed-0.json"
    assert _record(record)["components"]["backbone"]["details"]["sha256"]
    victim.unlink()
    return record, model, victim


def test_reproduce_and_export_run_a_records_model_code_only_with_consent_and_its_sha256(
    tmp_path: Path, planted_record: tuple[Path, Path, Path], run_cli: Callable[..., Any]
) -> None:
    record, model, victim = planted_record
    exported = tmp_path / "exported.pt"
    # No consent: neither command loads the file the record names.
    text = _one_line(run_cli("reproduce", str(record)))
    assert "--trust-model-code" in text and not victim.exists()
    text = _one_line(run_cli("export", str(record), "--format", "torchscript", str(exported)))
    assert "--trust-model-code" in text and not victim.exists() and not exported.exists()

    # Consent, but the file is no longer the one recorded: refused before it runs.
    original = model.read_bytes()
    other, other_victim = plant(tmp_path / "elsewhere", "planted.pt")
    model.write_bytes(other.read_bytes())
    for args in (
        ["reproduce", str(record), "--trust-model-code"],
        ["export", str(record), "--format", "onnx", str(exported), "--trust-model-code"],
    ):
        text = _one_line(run_cli(*args))
        assert "not the model file the run used" in text
        assert not victim.exists() and not other_victim.exists()

    # A hand-edited record naming a model file without a sha256: refused even with consent.
    edited = _record(record)
    edited["run"]["model"]["backbone"] = f"torchscript:{other}"
    hand = record.with_name("seed-7.json")
    hand.write_text(json.dumps(edited), encoding="utf-8")
    text = _one_line(run_cli("reproduce", str(hand), "--trust-model-code"))
    assert "records no sha256" in text and not other_victim.exists()

    # Consent and the recorded file: it runs, as the record's run did.
    model.write_bytes(original)
    again = run_cli("reproduce", str(record), "--trust-model-code")
    assert again.exit_code == 0 and "reproduced (tolerance 0)" in again.output, again.output
    assert victim.exists()


# -- no path comes from input unchecked -------------------------------------------------------


@pytest.fixture
def trained(tmp_path: Path, protocol: Path, run_cli: Callable[..., Any]) -> Path:
    """A tiny trained run's record (fusion none, seed 0)."""
    result = _run(run_cli, protocol, tmp_path / "out")
    assert result.exit_code == 0, result.output
    return tmp_path / "out" / "runs" / "tiny" / "none" / "seed-0.json"


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def test_reproduce_checks_every_name_it_reads_from_a_record(
    tmp_path: Path, trained: Path, run_cli: Callable[..., Any]
) -> None:
    record = _record(trained)
    before = _files(tmp_path)
    cases = [
        (("run", "label"), "../../x/escaped", "run.label"),
        (("protocol", "name"), "../../x", "protocol.name"),
        (("run", "model", "init"), {"from_run": "../../../x"}, "run.model.init.from_run"),
        (("run", "model", "init"), {"weights": "../../secret.safetensors"}, "init.weights"),
        (("run", "dataset", "split"), {"rule": "file", "path": "../../x.tsv"}, "split.path"),
    ]
    for keys, value, named in cases:
        edited = json.loads(json.dumps(record))
        node = edited
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
        hostile = trained.with_name(f"hostile-{len(_files(tmp_path))}.json")
        hostile.write_text(json.dumps(edited), encoding="utf-8")
        before.add(hostile)
        text = _one_line(run_cli("reproduce", str(hostile), "--output", str(tmp_path / "re")))
        assert named in text, text
        new = _files(tmp_path) - before
        assert all(p == tmp_path / "re" or tmp_path / "re" in p.parents for p in new), new
        assert not (tmp_path / "x").exists() and not (tmp_path.parent / "x").exists()


def test_reproduce_writes_only_under_its_output(
    tmp_path: Path, trained: Path, run_cli: Callable[..., Any]
) -> None:
    before = _files(tmp_path)
    out = tmp_path / "rerun"
    result = run_cli("reproduce", str(trained), "--output", str(out))
    assert result.exit_code == 0 and "reproduced (tolerance 0)" in result.output, result.output
    assert (out / "runs" / "tiny" / "none" / "seed-0.json").is_file()
    assert {p for p in _files(tmp_path) - before if out not in p.parents} == {out}
    # The record's own output folder is refused as --output: nothing under it changes.
    text = _one_line(run_cli("reproduce", str(trained), "--output", str(tmp_path / "out")))
    assert "holds the record" in text


def test_leaderboard_build_takes_protocol_names_only(
    tmp_path: Path, trained: Path, run_cli: Callable[..., Any]
) -> None:
    out = tmp_path / "out"
    text = _one_line(
        run_cli("leaderboard", "build", "--protocol", "../runs/x", "--output", str(out))
    )
    assert "--protocol" in text
    assert not list(tmp_path.rglob("x.csv")) and not list(tmp_path.rglob("x.md"))


# -- portable records -------------------------------------------------------------------------


def test_a_record_copied_elsewhere_verifies_and_reproduces(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    # A protocol that extends another file: both files travel in the record.
    here = tmp_path / "machine-a" / "protocols"
    here.mkdir(parents=True)
    (here / "base.toml").write_text(TINY_PROTOCOL, encoding="utf-8")
    child = here / "tiny-one.toml"
    child.write_text(
        'extends = "base.toml"\nname = "tiny-one"\nversion = 2\nseeds = [0]\n'
        "[training]\nepochs = 1\n",
        encoding="utf-8",
    )
    out = tmp_path / "machine-a" / "out"
    result = _run(run_cli, child, out)
    assert result.exit_code == 0, result.output
    record = _record(out / "runs" / "tiny-one" / "none" / "seed-0.json")
    assert "path" not in record["protocol"]
    assert [s["file"] for s in record["protocol"]["sources"]] == ["tiny-one.toml", "base.toml"]
    assert str(tmp_path) not in json.dumps(record["protocol"])

    moved = tmp_path / "machine-b" / "clone" / "results"
    shutil.copytree(out, moved)
    shutil.rmtree(tmp_path / "machine-a")
    copied = moved / "runs" / "tiny-one" / "none" / "seed-0.json"
    result = run_cli("verify", str(copied), "--json")
    assert result.exit_code == 0, result.output
    checks = {c["item"]: c for c in json.loads(result.output)[0]["checks"]}
    assert checks["protocol sha256"]["status"] == "ok", checks["protocol sha256"]
    assert "carried in the record" in checks["protocol sha256"]["reason"]
    again = run_cli("reproduce", str(copied))
    assert again.exit_code == 0 and "reproduced (tolerance 0)" in again.output, again.output

    # An edited carried protocol no longer hashes to the recorded sha256: refused, differs.
    data = _record(copied)
    data["protocol"]["sources"][1]["text"] += "\n# edited\n"
    copied.write_text(json.dumps(data), encoding="utf-8")
    assert "edited; refused" in _one_line(run_cli("reproduce", str(copied)))
    result = run_cli("verify", str(copied), "--json")
    checks = {c["item"]: c for c in json.loads(result.output)[0]["checks"]}
    assert checks["protocol sha256"]["status"] == "differs"


def test_the_carried_protocol_holds_its_split_file(tmp_path: Path) -> None:
    from biobench.recording import protocol_section
    from biobench.reproduce import carried_protocol

    split = tmp_path / "a" / "splits" / "pinned.tsv"
    split.parent.mkdir(parents=True)
    split.write_text("key\tsplit\nx\ttrain\ny\ttest\n", encoding="utf-8")
    text = PROTOCOL.replace(
        '[dataset]\nname = "tiny"',
        '[dataset]\nname = "tiny"\nsplit = { rule = "file", path = "splits/pinned.tsv" }',
    )
    (tmp_path / "a" / "tiny.toml").write_text(text, encoding="utf-8")
    protocol = load_protocol(tmp_path / "a" / "tiny.toml")
    section = protocol_section(protocol, protocol.runs()[0].dataset)
    assert section["split_files"] == {"splits/pinned.tsv": split.read_text()}
    again = carried_protocol(Path("r.json"), section, tmp_path / "b")
    assert again.sha256 == protocol.sha256 and again.data == protocol.data
    assert (again.base_dir / "splits" / "pinned.tsv").read_text() == split.read_text()
    # Carried file names may not leave the folder they are written to.
    section["split_files"] = {"../../../escaped.tsv": "x"}
    with pytest.raises(BiobenchError, match="protocol.split_files"):
        carried_protocol(Path("r.json"), section, tmp_path / "c")
    assert not list(tmp_path.rglob("escaped.tsv"))


def test_old_records_with_an_absolute_protocol_path_still_read(
    tmp_path: Path, run_cli: Callable[..., Any]
) -> None:
    """Records written before carrying their protocol named its absolute path (the committed
    ones did): the protocol is found by name, the path is neither read nor shown."""
    from biobench.site.run_pages import _protocol_file

    repo = Path(__file__).resolve().parents[2]
    folder = tmp_path / "runs" / "quick" / "case1-none"
    shutil.copytree(repo / "leaderboards" / "runs" / "quick" / "case1-none", folder)
    record = folder / "seed-0.json"
    data = _record(record)
    section = data["protocol"]
    data["protocol"] = {
        "name": section["name"],
        "path": "/elsewhere/biobench/protocols/quick.toml",
        "sha256": section["sha256"],
        "version": section["version"],
    }
    record.write_text(json.dumps(data), encoding="utf-8")
    assert _protocol_file(data["protocol"]) == "quick.toml"  # the run page shows no path
    result = run_cli("verify", str(record), "--json", plugins=())
    checks = {c["item"]: c for c in json.loads(result.output)[0]["checks"]}
    assert checks["protocol sha256"]["status"] in ("ok", "differs")
    assert "protocol 'quick' installed" in checks["protocol sha256"]["reason"]
    # reproduce finds it the same way (by name, among the installed protocols).
    from biobench.protocol import ProtocolIndex
    from biobench.records import RunRecord
    from biobench.reproduce import find_protocol
    from biobench.testing import new_plugin_manager

    index = ProtocolIndex(new_plugin_manager().protocol_dirs())
    protocol, how = find_protocol(record, RunRecord.read(record), index, tmp_path / "carried")
    assert protocol.path == (repo / "protocols" / "quick.toml").resolve() and "quick" in how
    assert not (tmp_path / "carried").exists()
