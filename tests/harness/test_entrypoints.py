"""Real entry-point loading: a plugin distribution installed with pip is discovered and used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "example_plugin"


@pytest.fixture(scope="module")
def installed_example(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("site")
    build = tmp_path_factory.mktemp("build")
    # Copy the source so the build leaves no egg-info in the repository.
    subprocess.run(["cp", "-r", str(EXAMPLE), str(build / "src")], check=True)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-index",
            "--no-build-isolation",
            "--target",
            str(target),
            str(build / "src"),
        ],
        check=True,
        capture_output=True,
    )
    return target


def biobench(site: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(site)
    env.pop("BIOBENCH_DISABLE_PLUGIN_AUTOLOAD", None)
    return subprocess.run(
        [sys.executable, "-m", "biobench", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=600,
    )


@pytest.mark.slow
def test_installed_plugin_is_discovered_and_runs(installed_example: Path, tmp_path: Path) -> None:
    listing = biobench(installed_example, "plugins", "--json", cwd=tmp_path)
    assert listing.returncode == 0, listing.stderr
    plugins = {p["name"]: p for p in json.loads(listing.stdout)}
    example = plugins["example"]
    assert example["distribution"] == "biobench-example" and example["version"] == "0.3.0"
    assert example["registered"] == {
        "backbone": ["mean_colour"],
        "fusion": ["scaled_concat"],
        "protocol": ["example-tiny"],
    }
    assert "biobench_protocol_dirs" in example["hooks"]

    run = biobench(
        installed_example,
        "-p",
        "biobench.testing_plugin",
        "run",
        "--protocol",
        "example-tiny",
        "--output",
        str(tmp_path / "out"),
        "--no-progress",
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    record = json.loads((tmp_path / "out/runs/example-tiny/default/seed-0.json").read_text())
    assert record["components"]["backbone"]["distribution"] == "biobench-example"
    assert record["components"]["fusion"]["name"] == "scaled_concat"
