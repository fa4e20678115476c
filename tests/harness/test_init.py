"""Starting a run from another run's weights (pre-training) or from a local weights file."""

from __future__ import annotations

import json
from pathlib import Path

from biobench.testing import TINY_PROTOCOL

PRETRAIN = (
    TINY_PROTOCOL
    + """
[[runs]]
label = "finetune"
model = { fusion = "none", init = { from_run = "pretrain" } }

[[runs]]
label = "pretrain"
dataset = { options = { identities = 8, seed = 3 } }
training = { tasks = ["identity"] }
"""
)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_finetune_starts_from_the_pretrained_run(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    result = run_cli(
        "run", "--protocol", str(write(tmp_path, PRETRAIN)), "--output", str(out),
        "--runs", "finetune,pretrain", "--seeds", "0",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    # The pre-training run went first although the protocol lists it last.
    assert result.output.index("/ pretrain /") < result.output.index("/ finetune /")
    pre = json.loads((out / "runs/tiny/pretrain/seed-0.json").read_text())
    fine = json.loads((out / "runs/tiny/finetune/seed-0.json").read_text())
    init = fine["artifacts"]["init"]
    assert init["from_run"] == "pretrain"
    assert init["sha256"] == pre["artifacts"]["model"]["sha256"]
    assert init["loaded"] > 0
    # 8 pre-training identities vs 6: the identity head's output layer cannot be copied.
    assert "identity_head.out.weight" in init["skipped"]
    assert fine["run"]["model"]["init"] == {"from_run": "pretrain"}
    # Reproducing the fine-tuned run starts from the same pre-trained weights (it used to train
    # from scratch and report every metric as differing).
    again = run_cli("reproduce", str(out / "runs/tiny/finetune/seed-0.json"))
    assert again.exit_code == 0, again.output
    assert "reproduced (tolerance 0)" in again.output and "DIFFERS" not in again.output
    assert "pretrain/seed-0-model.safetensors (model.init)" in again.output


def test_a_missing_source_run_fails_before_training(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    result = run_cli(
        "run", "--protocol", str(write(tmp_path, PRETRAIN)), "--output", str(out),
        "--runs", "finetune", "--seeds", "0",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "starts from run 'pretrain' seed 0, which is neither planned nor recorded" in (
        result.output
    )
    assert not out.exists()


def test_circular_initialisation_is_a_protocol_error(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    text = PRETRAIN.replace(
        'training = { tasks = ["identity"] }',
        'training = { tasks = ["identity"] }\nmodel = { init = { from_run = "finetune" } }',
    )
    result = run_cli("protocols", "validate", str(write(tmp_path, text)))
    assert result.exit_code == 2 and "circular initialisation" in result.output


def test_weights_file_must_be_safetensors(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    (tmp_path / "w.pt").write_bytes(b"not safetensors")
    text = TINY_PROTOCOL.replace(
        'model.fusion = "none"', 'model.fusion = "none"\nmodel.init = { weights = "w.pt" }'
    )
    result = run_cli(
        "run", "--protocol", str(write(tmp_path, text)), "--output", str(tmp_path / "o"),
        "--runs", "none",
    )  # fmt: skip
    assert result.exit_code == 2 and "is not a .safetensors file" in result.output


def test_parallel_jobs_run_the_pretraining_first(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    out = tmp_path / "out"
    result = run_cli(
        "run", "--protocol", str(write(tmp_path, PRETRAIN)), "--output", str(out),
        "--runs", "finetune,pretrain", "--seeds", "0", "--jobs", "2",
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    fine = json.loads((out / "runs/tiny/finetune/seed-0.json").read_text())
    assert fine["artifacts"]["init"]["loaded"] > 0


def test_weights_of_a_compiled_backbone_load_into_an_uncompiled_model(tmp_path: Path) -> None:
    # --compile wraps the backbone (torch.compile), which puts "_orig_mod." into its tensors'
    # names; a run starting from such weights (model.init) skipped the whole backbone.
    import torch
    from safetensors.torch import load_file, save_file

    from biobench.model import load_initial_weights
    from biobench.recording import save_weights

    class Model(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.backbone = torch.nn.Linear(3, 2)
            self.head = torch.nn.Linear(2, 2)

    compiled = Model()
    compiled.backbone = torch.compile(compiled.backbone)  # compiles on first call only
    assert "backbone._orig_mod.weight" in compiled.state_dict()
    save_weights(compiled, tmp_path / "new.safetensors")
    names = {"backbone.weight", "backbone.bias", "head.weight", "head.bias"}
    assert set(load_file(tmp_path / "new.safetensors")) == names
    # A file written before (compiled names) still loads every tensor.
    old = {k: v.contiguous() for k, v in compiled.state_dict().items()}
    save_file(old, tmp_path / "old.safetensors")
    for name in ("new", "old"):
        fresh = Model()
        info = load_initial_weights(fresh, tmp_path / f"{name}.safetensors", None)
        assert (info["loaded"], info["skipped"]) == (4, []), name
        assert torch.equal(fresh.backbone.weight, compiled.backbone._orig_mod.weight)
