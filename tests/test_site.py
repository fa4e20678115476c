"""The leaderboard website built from the committed run records (leaderboards/runs).

The browser tests drive the site in headless Chromium through Playwright's Python client with
the system's Chromium (Debian package ``chromium``; ``.ci/run`` installs it when missing).  They
skip, saying why, only when no Chromium executable can be found.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from biobench import leaderboard as lb
from biobench.errors import BiobenchError
from biobench.plugins import PluginManager
from biobench.protocol import ProtocolIndex
from biobench.site import SITE_MARKER, build_site

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "leaderboards" / "runs"


def _committed_runs(dest: Path) -> None:
    """Copy the committed records (and their score files) under ``dest/runs``."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-z", "leaderboards/runs"],
            cwd=REPO,
            capture_output=True,
            check=True,
        ).stdout.split(b"\0")
        files = [REPO / f.decode() for f in listed if f]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in RUNS.rglob("*") if p.is_file()]  # not a git checkout
    for path in files:
        target = dest / path.relative_to(REPO / "leaderboards")
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def _prepare(output: Path) -> list[lb.Built]:
    index = ProtocolIndex(PluginManager().protocol_dirs())
    built = []
    for folder in sorted(p for p in (output / "runs").iterdir() if p.is_dir()):
        try:
            protocol = index.load(folder.name)
        except BiobenchError:
            protocol = None
        built.append(lb.prepare(output, protocol, folder.name))
    return built


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[lb.Built]]:
    base = tmp_path_factory.mktemp("site")
    output = base / "out"
    _committed_runs(output)
    built = _prepare(output)
    build_site(built, base / "html")
    return base / "html", built


def test_every_protocol_and_record_has_a_page(site: tuple[Path, list[lb.Built]]) -> None:
    root, built = site
    assert (root / "index.html").is_file() and (root / SITE_MARKER).is_file()
    index = (root / "index.html").read_text(encoding="utf-8")
    for item in built:
        board = item.board
        assert f'href="p/{board.name}/index.html"' in index
        page = (root / "p" / board.name / "index.html").read_text(encoding="utf-8")
        for row in board.rows:
            assert f'id="row-{row.key}"' in page
            for record in row.records:
                rel = record.path[len(f"runs/{board.name}/") : -len(".json")]
                run = root / "p" / board.name / "runs" / f"{rel}.html"
                text = run.read_text(encoding="utf-8")
                assert record.data["protocol"]["sha256"] in text
                assert (run.parent / f"{Path(rel).name}.json").read_bytes() == (
                    (item.output / record.path).read_bytes()
                )
                # Every score file the record lists is copied beside the page and linked, or
                # named as missing when the record's folder does not hold it.
                source = (item.output / record.path).parent
                for rel_score in (record.data.get("artifacts") or {}).get("scores", {}).values():
                    if (source / rel_score).is_file():
                        assert (run.parent / rel_score).read_bytes() == (
                            (source / rel_score).read_bytes()
                        )
                        assert f'href="{rel_score}"' in text
                    else:
                        assert "not found beside it" in text and f"<code>{rel_score}</code>" in text


def test_no_reference_outside_the_site(site: tuple[Path, list[lb.Built]]) -> None:
    root, _ = site
    pattern = re.compile(r"""(?:src|href)\s*=\s*["']([^"']+)["']|url\(([^)]+)\)""")
    for path in root.rglob("*"):
        if path.suffix not in {".html", ".css", ".js"}:
            continue
        text = path.read_text(encoding="utf-8")
        for match in pattern.finditer(text):
            target = (match.group(1) or match.group(2)).strip("'\"")
            assert "//" not in target.split("#")[0], f"{path}: external reference {target}"
            if target.startswith("#") or target.startswith("data:") or "${" in target:
                continue
            resolved = (path.parent / target.split("#")[0]).resolve()
            assert resolved.is_relative_to(root.resolve()), f"{path}: {target} leaves the site"
            assert resolved.exists(), f"{path}: broken link {target}"


def test_rebuild_is_idempotent_and_refuses_foreign_folders(
    site: tuple[Path, list[lb.Built]], tmp_path: Path
) -> None:
    root, built = site
    before = {p: p.read_bytes() for p in root.rglob("*") if p.is_file()}
    result = build_site(built, root)
    assert result.written == 0 and result.removed == 0
    assert {p: p.read_bytes() for p in root.rglob("*") if p.is_file()} == before
    # A stale file of an earlier build is removed; a folder that is not a site is refused.
    (root / "p" / "old.html").write_text("old", encoding="utf-8")
    assert build_site(built, root).removed == 1
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me", encoding="utf-8")
    with pytest.raises(BiobenchError, match="not empty"):
        build_site(built, foreign)
    assert (foreign / "notes.txt").read_text(encoding="utf-8") == "keep me"


# ---------------------------------------------------------------------------------------------
# Headless Chromium
# ---------------------------------------------------------------------------------------------


def _chromium() -> str | None:
    """A Chromium executable: $BIOBENCH_CHROMIUM, else chromium / chromium-browser / chrome."""
    explicit = os.environ.get("BIOBENCH_CHROMIUM")
    if explicit:
        return explicit
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None
