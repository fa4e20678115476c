"""The plugin guide's example is ``tests/example_plugin``, and it works as printed.

The "A complete plugin" section of ``docs/plugins.md`` shows the plugin's files (each block starts
with a ``# <path>`` comment; ``make docs`` copies them in) and the commands that install and run
it.  The blocks must equal the files, and the wheel built from the files must ship the protocol
file and run it.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import zipfile
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "tests" / "example_plugin"
SKIP = {"__pycache__", "build", "dist"}


GUIDE = ROOT / "docs" / "plugins.md"


def guide_section() -> str:
    text = GUIDE.read_text(encoding="utf-8")
    start = text.index("\n## A complete plugin\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def guide_blocks() -> tuple[dict[str, str], list[str]]:
    """The section's file blocks by path, and the commands of its console block."""
    files: dict[str, str] = {}
    commands: list[str] = []
    for lang, body in re.findall(r"^```(\w*)\n(.*?)^```$", guide_section(), re.M | re.S):
        first, _, rest = body.partition("\n")
        if lang == "console":
            commands += [line[2:] for line in body.splitlines() if line.startswith("$ ")]
        elif first.startswith("# ") and first.endswith((".py", ".toml")):
            files[first[2:].strip()] = rest
    return files, commands


def example_files() -> dict[str, str]:
    return {
        str(p.relative_to(EXAMPLE)): p.read_text(encoding="utf-8")
        for p in sorted(EXAMPLE.rglob("*"))
        if p.is_file()
        and not SKIP & set(p.relative_to(EXAMPLE).parts)
        and not any(part.endswith(".egg-info") for part in p.parts)
        and p.suffix != ".pyc"
    }


def test_plugin_guide_example_is_the_example_plugin() -> None:
    files, commands = guide_blocks()
    expected = example_files()
    assert sorted(files) == sorted(expected), f"{GUIDE} shows other files than the example's"
    for path, text in expected.items():
        assert files[path] == text, (
            f"{GUIDE} block '# {path}' differs from {EXAMPLE / path}: run make docs"
        )
    assert commands[0] == "pip install ."
    assert any(c.startswith("biobench run --protocol example-tiny") for c in commands)


def _can_build_wheels_offline() -> bool:
    """setuptools builds wheels itself from 70.1; before, it needs the ``wheel`` package."""
    try:
        version("wheel")
        return True
    except PackageNotFoundError:
        major, minor = (int(x) for x in version("setuptools").split(".")[:2])
        return (major, minor) >= (70, 1)


@pytest.fixture(scope="module")
def example_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A wheel of ``tests/example_plugin``, built from a copy (no build files in the tree)."""
    build = tmp_path_factory.mktemp("build")
    source = build / "src"
    shutil.copytree(EXAMPLE, source, ignore=shutil.ignore_patterns(*SKIP, "*.egg-info"))
    # Without the build backend's wheel support in this environment, pip fetches the
    # pyproject's build requirements from the configured package index.
    isolation = ["--no-build-isolation"] if _can_build_wheels_offline() else []
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation,
         "--wheel-dir", str(build / "dist"), str(source)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    (wheel,) = (build / "dist").glob("biobench_example-*.whl")
    return wheel


def test_example_wheel_ships_its_protocol_and_runs_as_printed(
    example_wheel: Path, tmp_path: Path
) -> None:
    names = zipfile.ZipFile(example_wheel).namelist()
    assert "biobench_example/protocols/example-tiny.toml" in names, names
    site = tmp_path / "site"
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
         "--target", str(site), str(example_wheel)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert installed.returncode == 0, installed.stdout + installed.stderr

    env = dict(os.environ, PYTHONPATH=str(site))
    env.pop("BIOBENCH_DISABLE_PLUGIN_AUTOLOAD", None)
    work = tmp_path / "work"
    work.mkdir()
    _, commands = guide_blocks()
    outputs = {}
    for command in commands[1:]:  # after `pip install .`, done above from the wheel
        argv = shlex.split(command)
        assert argv[0] == "biobench", command
        done = subprocess.run(
            [sys.executable, "-m", "biobench", *argv[1:]],
            capture_output=True, text=True, env=env, cwd=work, timeout=600,
        )  # fmt: skip
        assert done.returncode == 0, f"{command}:\n{done.stdout}{done.stderr}"
        assert "warning: plugin 'example'" not in done.stderr, done.stderr
        outputs[argv[1]] = done.stdout
    assert "protocol: example-tiny" in outputs["plugins"]
    record = json.loads((work / "leaderboards/runs/example-tiny/default/seed-0.json").read_text())
    assert record["components"]["backbone"]["distribution"] == "biobench-example"
    assert record["components"]["fusion"]["name"] == "scaled_concat"
