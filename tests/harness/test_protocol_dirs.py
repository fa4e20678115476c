"""``biobench plugins`` flags plugins whose protocol directories are missing or hold no protocol."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

PLUGIN = """\
from pathlib import Path

from biobench import hookimpl


@hookimpl
def biobench_protocol_dirs():
    return [Path(d) for d in {dirs!r}]
"""


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Three plugin modules: protocols missing (not packaged), an empty folder, one protocol."""
    modules = tmp_path / "modules"
    modules.mkdir()
    missing, empty, good = tmp_path / "missing", tmp_path / "empty", tmp_path / "good"
    empty.mkdir()
    (empty / "README.txt").write_text("not a protocol")
    good.mkdir()
    (good / "shipped.toml").write_text('name = "shipped"\n')
    for name, dirs in {
        "pd_missing": [missing],
        "pd_empty_and_good": [empty, good],
        "pd_good": [good],
    }.items():
        (modules / f"{name}.py").write_text(PLUGIN.format(dirs=[str(d) for d in dirs]))
    monkeypatch.syspath_prepend(str(modules))
    return {"missing": missing, "empty": empty}


def test_plugins_warns_per_plugin_about_protocol_dirs_without_protocols(
    run_cli, plugins: dict[str, Path]
) -> None:
    names = ("pd_missing", "pd_empty_and_good", "pd_good")
    result = run_cli("plugins", plugins=names)
    assert result.exit_code == 0, result.output  # a warning: the components still work
    lines = [line for line in result.stderr.splitlines() if "protocol directory" in line]
    assert len(lines) == 2, result.stderr
    missing, empty = sorted(lines, key=lambda line: "pd_missing" not in line)
    assert missing.startswith("biobench: warning: plugin 'pd_missing': ")
    assert f"{plugins['missing']} does not exist" in missing
    assert empty.startswith("biobench: warning: plugin 'pd_empty_and_good': ")
    assert f"{plugins['empty']} holds no *.toml protocol file" in empty

    listing = json.loads(run_cli("plugins", "--json", plugins=names).stdout)
    by_name = {p["name"]: p for p in listing}
    assert len(by_name["pd_missing"]["warnings"]) == 1
    assert "does not exist" in by_name["pd_missing"]["warnings"][0]
    assert len(by_name["pd_empty_and_good"]["warnings"]) == 1
    assert by_name["pd_empty_and_good"]["registered"]["protocol"] == ["shipped"]
    assert "warnings" not in by_name["pd_good"]
    assert not any("warnings" in p for p in listing if p["builtin"])
