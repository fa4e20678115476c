"""CPU math modes: what each sets, what the record says, and that ``portable`` numbers do not
follow the processor's instruction set while ``native`` ones do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from biobench import cpumath
from biobench.errors import BiobenchError
from biobench.testing import TINY_PROTOCOL

HAS_AVX512 = "avx512f" in cpumath.describe()["instruction_sets"]


def test_unknown_mode_is_refused_naming_the_source(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(BiobenchError, match="--cpu-math.*native, avx2, portable"):
        cpumath.requested("fast")
    monkeypatch.setenv(cpumath.ENV, "fast")
    with pytest.raises(BiobenchError, match=cpumath.ENV):
        cpumath.requested()
    monkeypatch.setenv(cpumath.ENV, "portable")
    assert cpumath.requested() == "portable"
    assert cpumath.requested("avx2") == "avx2"  # the command line wins


def test_a_conflicting_library_setting_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MKL_CBWR", "AVX512")
    with pytest.raises(BiobenchError, match="MKL_CBWR=AVX2,STRICT.*MKL_CBWR=AVX512"):
        cpumath.apply("portable")


@pytest.mark.skipif(
    torch.backends.cpu.get_cpu_capability() == "AVX2", reason="torch already runs AVX2 kernels"
)
def test_too_late_in_a_process_that_chose_other_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    # This test process has computed with torch already: its kernels are chosen.
    for key in ("ATEN_CPU_CAPABILITY", "MKL_CBWR", cpumath.ENV):
        monkeypatch.delenv(key, raising=False)
    try:
        with pytest.raises(BiobenchError, match=f"start a new process with {cpumath.ENV}=avx2"):
            cpumath.apply("avx2")
    finally:
        torch.backends.mkldnn.enabled = True


def test_differences_name_what_changes_numbers() -> None:
    here = {
        "device": "cpu",
        "torch": "2.14.1",
        "torch_threads": 2,
        "platform": "Linux-x",
        "world_size": 1,
        "cpu_math": {
            "mode": "avx2",
            "aten_capability": "AVX2",
            "onednn": True,
            "library_env": {"MKL_CBWR": "AVX2"},
            "instruction_sets": ["avx2", "avx512f"],
            "caches": {"L2": "2048K"},
            "machine": "x86_64",
        },
    }
    same = json.loads(json.dumps(here))
    assert cpumath.differences(same, here) == []
    other = json.loads(json.dumps(here))
    other["torch_threads"] = 4
    other["cpu_math"]["caches"] = {"L2": "1024K"}
    other["cpu_math"]["instruction_sets"] = ["avx2"]  # avx2 mode: the ISA itself does not count
    found = cpumath.differences(other, here)
    assert len(found) == 2
    assert found[0].startswith("threads: 4 (record) vs 2")
    assert found[1].startswith("cache sizes (oneDNN blocking)")
    # Between portable records neither the instruction sets nor the caches matter.
    for env in (other, here):
        env["cpu_math"].update(mode="portable", onednn=False)
    assert [d for d in cpumath.differences(other, here) if "threads" not in d] == []
    old = {k: v for k, v in here.items() if k != "cpu_math"}
    assert "CPU math: not recorded" in cpumath.differences(old, here)[-1]


def _run(tmp_path: Path, name: str, mode: str, **env: str) -> dict:
    protocol = tmp_path / "tiny.toml"
    protocol.write_text(TINY_PROTOCOL, encoding="utf-8")
    out = tmp_path / name
    environ = {k: v for k, v in os.environ.items() if k not in cpumath.MODES["avx2"]["env"]}
    environ.update(
        BIOBENCH_DISABLE_PLUGIN_AUTOLOAD="1", BIOBENCH_CACHE=str(tmp_path / "cache"), **env
    )
    command = [sys.executable, "-m", "biobench", "-p", "biobench.testing_plugin", "run"]
    command += ["--protocol", str(protocol), "--runs", "none", "--seeds", "0", "--threads", "2"]
    command += ["--cpu-math", mode, "--no-progress", "--output", str(out)]
    done = subprocess.run(command, env=environ, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads((out / "runs" / "tiny" / "none" / "seed-0.json").read_text())


@pytest.mark.slow
@pytest.mark.skipif(not HAS_AVX512, reason="needs a processor with AVX-512 to emulate one without")
def test_portable_numbers_do_not_follow_the_instruction_set(tmp_path: Path) -> None:
    """MKL_ENABLE_INSTRUCTIONS=AVX2 and ONEDNN_MAX_CPU_ISA=AVX2 make this machine's libraries
    dispatch as on a processor without AVX-512: native numbers change, portable ones do not."""
    as_avx2 = {"MKL_ENABLE_INSTRUCTIONS": "AVX2", "ONEDNN_MAX_CPU_ISA": "AVX2"}
    portable = _run(tmp_path, "p", "portable")
    portable_avx2 = _run(tmp_path, "p2", "portable", **as_avx2)
    native = _run(tmp_path, "n", "native")
    native_avx2 = _run(tmp_path, "n2", "native", **as_avx2)

    math = portable["environment"]["cpu_math"]
    assert math["mode"] == "portable" and math["onednn"] is False
    assert math["aten_capability"] == "AVX2"
    assert math["library_env"]["MKL_CBWR"] == "AVX2,STRICT"
    assert native["environment"]["cpu_math"]["aten_capability"] == "AVX512"

    assert portable["losses"] == portable_avx2["losses"]
    assert portable["metrics"] == portable_avx2["metrics"]
    assert native["losses"] != native_avx2["losses"]  # the emulation does change kernels
