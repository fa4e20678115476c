"""Every committed run record verifies from a clone of the repository in another directory:
records name their protocol by name and carry it, so no path of the machine that made them is
needed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
@pytest.mark.skipif(
    shutil.which("git") is None or not (REPO / ".git").exists(), reason="not a git checkout"
)
def test_every_committed_record_verifies_in_a_clone_elsewhere(tmp_path: Path) -> None:
    clone = tmp_path / "elsewhere" / "biobench"
    subprocess.run(["git", "clone", "-q", str(REPO), str(clone)], check=True, timeout=300)
    done = subprocess.run(
        [sys.executable, "-m", "biobench", "verify", str(clone / "leaderboards" / "runs")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    summary = done.stdout.strip().splitlines()[-1]
    found = re.fullmatch(
        r"(\d+) record\(s\): (\d+) verify \(every metric recomputed\), (\d+) with metrics that "
        r"cannot be recomputed \(not verified\), 0 DIFFER",
        summary,
    )
    assert found, summary
    records = sorted((clone / "leaderboards" / "runs").glob("*/*/seed-*.json"))
    assert int(found.group(1)) == len(records) > 0
    # Only records that declare score files they did not keep can have values left unchecked
    # (some that do keep every file their metrics need: attributes-alone's unused 1:N files).
    declared = sum(
        bool(json.loads(p.read_text(encoding="utf-8"))["artifacts"].get("scores_not_kept"))
        for p in records
    )
    assert int(found.group(3)) <= declared
    assert int(found.group(2)) >= len(records) - declared


def test_no_committed_record_names_a_directory_of_the_machine_that_made_it() -> None:
    for path in sorted((REPO / "leaderboards" / "runs").glob("*/*/seed-*.json")):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r'": "(/|~/|[A-Za-z]:\\\\)', text), path
