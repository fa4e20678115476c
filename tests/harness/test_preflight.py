"""Preflight: every bad input fails before training, with one line, exit 2, nothing written.

Each case here passed ``--dry-run`` (or ``protocols validate``) before the preflight existed
and failed only after training had started, or not at all.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from biobench.testing import TINY_PROTOCOL

PLUGINS = ("biobench.testing_plugin", "bad_plugins")


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(text, encoding="utf-8")
    return path


def one_line_error(result, *needles: str) -> None:  # noqa: ANN001
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("biobench: error:"), result.output
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


CASES = {
    "bad metric option": (
        TINY_PROTOCOL.replace(
            'metrics = ["identification", "attributes"]',
            'metrics = [{ name = "verification", options = { far = 7 } }]',
        ),
        ("metric", "verification"),
    ),
    "fusion inputs typo": (
        TINY_PROTOCOL.replace('model.fusion = "none"', 'model.fusion = "typo_fusion"'),
        ("typo_fusion", "predicetd", "bad_plugins"),
    ),
    "fusion output_dim wrong": (
        TINY_PROTOCOL.replace('model.fusion = "none"', 'model.fusion = "wide_fusion"'),
        ("wide_fusion", "declares output_dim", "bad_plugins"),
    ),
    "unknown backbone option": (
        TINY_PROTOCOL.replace("hidden = 32", "hidden = 32\nbackbone_options = { widht = 4 }"),
        ("no option 'widht'", "did you mean 'width'"),
    ),
    "unknown optimizer option": (
        TINY_PROTOCOL.replace(
            "optimizer_options = { lr = 0.01 }", "optimizer_options = { lr = 0.01, momentun = 1 }"
        ),
        ("momentun",),
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_dry_run_catches_it(case: str, tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    text, needles = CASES[case]
    out = tmp_path / "out"
    result = run_cli(
        "run", "--protocol", str(write(tmp_path, text)), "--output", str(out), "--dry-run",
        plugins=PLUGINS,
    )  # fmt: skip
    one_line_error(result, "tiny.toml", *needles)
    assert not out.exists()


@pytest.mark.parametrize("case", sorted(CASES))
def test_real_run_fails_before_training(case: str, tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    text, needles = CASES[case]
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    result = run_cli(
        "run", "--protocol", str(write(tmp_path, text)), "--output", str(out), "--seeds", "0",
        plugins=PLUGINS,
    )  # fmt: skip
    one_line_error(result, *needles)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]  # no checkpoint, no record


@pytest.mark.parametrize("case", sorted(CASES))
def test_protocols_validate_catches_it(case: str, tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    text, needles = CASES[case]
    result = run_cli("protocols", "validate", str(write(tmp_path, text)), plugins=PLUGINS)
    one_line_error(result, *needles)


def test_validate_passes_a_good_protocol(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    result = run_cli("protocols", "validate", str(write(tmp_path, TINY_PROTOCOL)))
    assert result.exit_code == 0, result.output
    assert "ok (tiny v1, 3 runs checked)" in result.output


def test_a_raising_exporter_is_one_line(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    result = run_cli(
        "data", "export", "tiny", "--image-size", "16", "--format", "raising",
        str(tmp_path / "x"), plugins=PLUGINS,
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "exporter 'raising'" in result.output and "exporter bug" in result.output
    assert "Traceback" not in result.output


def test_no_code_or_doc_cites_files_outside_the_repository() -> None:
    root = Path(__file__).resolve().parents[2]
    outside = ("DESIGN.md", "DATASETS.md", "STYLE.md", "../shared")
    offenders = []
    for folder in ("biobench", "plugins", "protocols", "benchmarks", "docs"):
        for path in (root / folder).rglob("*"):
            if path.suffix in {".py", ".toml", ".md"} and path.is_file():
                text = path.read_text(encoding="utf-8", errors="replace")
                offenders += [f"{path.relative_to(root)}: {n}" for n in outside if n in text]
    assert not offenders, offenders


def _last_error(result, needle: str) -> str:  # noqa: ANN001
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    line = result.output.strip().splitlines()[-1]
    assert line.startswith("biobench: error:") and needle in line, result.output
    return line


@pytest.mark.parametrize(
    ("dataset", "needle"),
    [
        ("half_size", "returned images of shape (8, 8, 3), expected (16, 16, 3)"),
        ("corrupt_cache", "raised ValueError"),
    ],
)
def test_data_commands_load_as_a_run_does(
    dataset: str, needle: str, tmp_path: Path, run_cli
) -> None:  # noqa: ANN001
    """``biobench data check/preview`` go through the run's data loading: same checks, same
    message (naming the dataset, its plugin and distribution)."""
    protocol = write(
        tmp_path,
        TINY_PROTOCOL.replace('[dataset]\nname = "tiny"', f'[dataset]\nname = "{dataset}"'),
    )
    run = run_cli(
        "run", "--protocol", str(protocol), "--output", str(tmp_path / "o"), plugins=PLUGINS
    )
    ran = _last_error(run, needle)
    expected = f"dataset '{dataset}' (plugin 'bad_plugins', "
    for command in ("check", "preview"):
        args = ["data", command, dataset, "--image-size", "16"]
        if command == "preview":
            args += ["--out", str(tmp_path / "sheet.png")]
        result = run_cli(*args, plugins=PLUGINS)
        checked = _last_error(result, needle)
        message = checked.removeprefix("biobench: error: ")
        assert message.startswith(expected), message
        assert ran.endswith(message), (ran, message)
    assert not (tmp_path / "o").exists()
