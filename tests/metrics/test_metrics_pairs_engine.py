"""Verification pairs through a whole run: the record states one, true origin of its pairs."""

from __future__ import annotations

import json
from pathlib import Path

from biobench.engine import Engine, RunOptions
from biobench.protocol import load_protocol
from biobench.testing import TINY_PROTOCOL, new_plugin_manager

PROTOCOL = TINY_PROTOCOL.replace(
    'metrics = ["identification", "attributes"]',
    'metrics = [{ name = "verification", options = { max_pairs = 20, pair_seed = 5 } }]',
)


def test_pair_options_shape_the_pairs_of_a_run(tmp_path: Path) -> None:
    path = tmp_path / "tiny.toml"
    path.write_text(PROTOCOL, encoding="utf-8")
    protocol = load_protocol(path)
    engine = Engine(
        new_plugin_manager(),
        RunOptions(output=tmp_path / "out", progress=False, log=lambda m: None),
    )
    result = engine.run_protocol(protocol, protocol.runs(only=["none"], seeds=[0]))
    record = json.loads(result.records[0].read_text())
    pairs = record["details"]["verification"]["pairs"]
    assert pairs["source"] == "generated"
    assert pairs["max_pairs"] == 20 and pairs["seed"] == 5 and pairs["n"] <= 20
    # One statement of the pairs' origin: nothing elsewhere in the record contradicts it.
    assert "pairs" not in (record.get("evaluation") or {})
    assert "pairs" not in record["data"]["evaluation"]
