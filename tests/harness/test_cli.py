"""The CLI end to end on the testing kit: exit statuses, messages, nothing written on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from biobench.testing import TINY_PROTOCOL


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file()) if path.exists() else []


@pytest.fixture
def protocol_file(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.toml"
    path.write_text(TINY_PROTOCOL, encoding="utf-8")
    return path


def one_line_error(result) -> str:  # noqa: ANN001
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    return lines[0]


@pytest.mark.parametrize(
    ("edit", "expect"),
    [
        (("hidden = 32", "hiden = 32"), "model.hiden"),
        (("epochs = 2", 'epochs = "2"'), "training.epochs"),
        (('backbone = "tiny_cnn"', 'backbone = "tiny_cn"'), "did you mean 'tiny_cnn'"),
    ],
)
def test_bad_protocol_exit_2_nothing_written(
    run_cli, protocol_file: Path, tmp_path: Path, edit: tuple[str, str], expect: str
) -> None:
    protocol_file.write_text(TINY_PROTOCOL.replace(*edit), encoding="utf-8")
    out = tmp_path / "out"
    result = run_cli("run", "--protocol", str(protocol_file), "--output", str(out))
    assert expect in one_line_error(result)
    assert files_under(out) == []


def test_unknown_protocol_name(run_cli, tmp_path: Path) -> None:
    result = run_cli("run", "--protocol", "no-such-protocol", "--output", str(tmp_path / "o"))
    assert "no protocol 'no-such-protocol'" in one_line_error(result)


def test_set_of_unknown_key(run_cli, protocol_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli(
        "run", "--protocol", str(protocol_file), "--set", "training.epoks=1", "--output", str(out)
    )
    assert "training.epoks" in one_line_error(result)
    assert files_under(out) == []


def test_unknown_backbone_flag(run_cli, protocol_file: Path, tmp_path: Path) -> None:
    result = run_cli(
        "run", "--protocol", str(protocol_file), "--backbone", "vgg61", "--output", str(tmp_path)
    )
    assert "did you mean 'vgg16'" in one_line_error(result)


def test_bad_backbone_option(run_cli, protocol_file: Path, tmp_path: Path) -> None:
    result = run_cli(
        "run",
        "--protocol",
        str(protocol_file),
        "--set",
        "model.backbone_options.widht=4",
        "--output",
        str(tmp_path / "o"),
    )
    assert "no option 'widht'" in one_line_error(result)


def test_dry_run_writes_nothing(run_cli, protocol_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("run", "--protocol", str(protocol_file), "--dry-run", "--output", str(out))
    assert result.exit_code == 0, result.output
    assert files_under(out) == []


def test_full_run_records_and_leaderboard(run_cli, protocol_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("run", "--protocol", str(protocol_file), "--output", str(out))
    assert result.exit_code == 0, result.output
    records = sorted((out / "runs" / "tiny").glob("*/seed-*.json"))
    assert len(records) == 6  # 3 runs x 2 seeds
    record = json.loads(records[0].read_text())
    assert record["protocol"]["name"] == "tiny" and record["protocol"]["version"] == 1
    assert record["components"]["backbone"]["plugin"] == "biobench.testing_plugin"
    assert record["data"]["fingerprint"] and record["environment"]["torch"]
    assert (out / "tiny.csv").exists() and (out / "tiny.md").exists()
    assert not list(out.rglob("*.tmp"))


def test_same_seed_same_numbers(run_cli, protocol_file: Path, tmp_path: Path) -> None:
    metrics = []
    for name in ("a", "b"):
        out = tmp_path / name
        result = run_cli(
            "run",
            "--protocol",
            str(protocol_file),
            "--runs",
            "ground-truth",
            "--seeds",
            "3",
            "--output",
            str(out),
        )
        assert result.exit_code == 0, result.output
        record = json.loads((out / "runs/tiny/ground-truth/seed-3.json").read_text())
        metrics.append((record["metrics"], record["losses"]))
    assert metrics[0] == metrics[1]


def test_plugins_json_lists_builtins(run_cli) -> None:
    result = run_cli("plugins", "--json")
    assert result.exit_code == 0
    listing = {p["name"]: p for p in json.loads(result.output)}
    assert listing["reference"]["distribution"] == "biobench"
    assert "vgg16" in listing["reference"]["registered"]["backbone"]


def test_protocols_commands(run_cli, protocol_file: Path) -> None:
    assert "quick" in run_cli("protocols", "list").output
    result = run_cli("protocols", "validate", str(protocol_file))
    assert result.exit_code == 0 and "ok" in result.output
    assert '"name": "tiny"' in run_cli("protocols", "show", str(protocol_file), "--json").output


def test_data_preview_check_and_missing_dataset(run_cli, tmp_path: Path) -> None:
    png = tmp_path / "sheet.png"
    result = run_cli(
        "data",
        "preview",
        "synthfaces",
        "-o",
        "identities=3",
        "-o",
        "images_per_identity=4",
        "--image-size",
        "32",
        "--identities",
        "3",
        "--per-identity",
        "4",
        "--out",
        str(png),
    )
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    check = run_cli("data", "check", "tiny", "--json")
    assert check.exit_code == 0 and json.loads(check.output)["images"] == 60
    report = run_cli("data", "check", "lfw", "--data-root", str(tmp_path / "nowhere"), "--json")
    assert json.loads(report.output)["found"] is False
    out = tmp_path / "out"
    missing = run_cli(
        "run",
        "--protocol",
        "lfw-cpu",
        "--data-root",
        str(tmp_path / "nowhere"),
        "--output",
        str(out),
    )
    line = one_line_error(missing)
    assert "lfw" in line and str(tmp_path / "nowhere") in line and "biobench data prepare" in line
    assert files_under(out) == []


def test_protocols_show_prints_toml_with_defaults_resolved(run_cli, protocol_file: Path) -> None:
    import tomllib

    from biobench.protocol import load_protocol

    result = run_cli("protocols", "show", str(protocol_file))
    assert result.exit_code == 0, result.output
    shown = tomllib.loads(result.output)  # the header lines are TOML comments
    protocol = load_protocol(protocol_file)
    assert [r["label"] for r in shown["runs"]] == [s.label for s in protocol.runs()]
    first, spec = shown["runs"][0], protocol.runs()[0]
    # Every default is spelled out: the whole configuration the run's hash covers.
    assert first["training"] == {k: v for k, v in spec.config()["training"].items()}
    assert first["model"]["dropout"] == spec.model["dropout"]
    assert not any(key.startswith("_") for key in shown)
    as_json = json.loads(run_cli("protocols", "show", str(protocol_file), "--json").output)
    assert as_json["runs"][0]["label"] == first["label"] and "_file" not in as_json


def test_protocols_list_shortens_descriptions_at_a_word(run_cli) -> None:
    lines = run_cli("protocols", "list").output.splitlines()
    quick = next(line for line in lines if line.startswith("quick "))
    # "... medium difficulty, 32 px, …" rather than "... 32 px, rende"
    assert quick.endswith(" …") and "Demo on synthfaces" in quick
    assert (
        quick.rstrip(" …").split()[-1]
        in "Demo on synthfaces (16 people x 100 images, medium difficulty, 32 px,".split()
    )
