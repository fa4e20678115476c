"""A command-line override that makes several cells one configuration runs it once, and says so."""

from __future__ import annotations

from pathlib import Path

from biobench.duplicates import merge_duplicate_runs
from biobench.identity import config_hash
from biobench.protocol import load_protocol
from biobench.testing import TINY_PROTOCOL

# Cells "none" and "ground-truth" differ only in their fusion; "attributes-alone" in its tasks.


def _protocol(tmp_path: Path, text: str = TINY_PROTOCOL):  # noqa: ANN202
    path = tmp_path / "tiny.toml"
    path.write_text(text, encoding="utf-8")
    return load_protocol(path)


def test_cells_an_override_makes_equal_are_merged_into_the_first(tmp_path: Path) -> None:
    protocol = _protocol(tmp_path)
    overrides = [("model.fusion", "none"), ("training.epochs", 1)]
    specs = protocol.runs(overrides)
    kept, warnings = merge_duplicate_runs(specs, protocol.runs())
    assert [s.label for s in kept] == ["none", "attributes-alone"]
    assert kept[0].seeds == [0, 1]
    digest = config_hash(specs[0].config())
    assert warnings == [
        f"the command line's overrides make runs 'none', 'ground-truth' one configuration "
        f"(hash {digest[:12]}): it runs once, as 'none.{digest[:8]}'"
    ]
    # --label NAME names the merged run after the first cell too.
    _, named = merge_duplicate_runs(specs, protocol.runs(), user_label="mine")
    assert named[0].endswith("it runs once, as 'none.mine'")


def test_a_cell_left_as_the_protocol_defines_it_keeps_its_label(tmp_path: Path) -> None:
    protocol = _protocol(tmp_path)
    kept, warnings = merge_duplicate_runs(
        protocol.runs([("model.fusion", "none")]), protocol.runs()
    )
    assert [s.label for s in kept] == ["none", "attributes-alone"]
    assert len(warnings) == 1 and warnings[0].endswith("it runs once, as 'none'")


def test_no_override_or_distinct_cells_change_nothing(tmp_path: Path) -> None:
    protocol = _protocol(tmp_path)
    for overrides in [(), [("training.epochs", 1)]]:
        specs = protocol.runs(overrides)
        kept, warnings = merge_duplicate_runs(specs, protocol.runs())
        assert kept == specs and warnings == []
    # Cells equal in the protocol itself are not the override's doing: left alone.
    twin = TINY_PROTOCOL + '\n[[runs]]\nlabel = "none-again"\nmodel.fusion = "none"\n'
    protocol = _protocol(tmp_path, twin)
    specs = protocol.runs([("training.epochs", 1)])
    kept, warnings = merge_duplicate_runs(specs, protocol.runs())
    assert [s.label for s in kept] == [s.label for s in specs] and warnings == []


def test_a_cell_another_starts_from_is_not_merged_away(tmp_path: Path) -> None:
    text = TINY_PROTOCOL + (
        '\n[[runs]]\nlabel = "fine-tuned"\nmodel.fusion = "none"\n'
        'model.init = { from_run = "ground-truth" }\ntraining.epochs = 1\n'
    )
    protocol = _protocol(tmp_path, text)
    specs = protocol.runs([("model.fusion", "none")])
    kept, warnings = merge_duplicate_runs(specs, protocol.runs())
    assert [s.label for s in kept] == ["none", "ground-truth", "attributes-alone", "fine-tuned"]
    assert warnings == []


def test_run_with_a_fusion_override_trains_the_shared_configuration_once(
    run_cli, tiny_protocol: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "run", "--protocol", str(tiny_protocol), "--output", str(out), "--seeds", "0",
        "--runs", "none,ground-truth", "--fusion", "none", "--set", "training.epochs=1",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "make runs 'none', 'ground-truth' one configuration" in result.output
    labels = sorted(p.name for p in (out / "runs" / "tiny").iterdir())
    assert len(labels) == 1 and labels[0].startswith("none."), labels
    assert [p.name for p in (out / "runs" / "tiny" / labels[0]).glob("seed-*.json")] == [
        "seed-0.json"
    ]
