"""The leaderboard website built from the committed run records (leaderboards/runs).

The browser tests drive the site in headless Chromium through Playwright's Python client with
the system's Chromium (Debian package ``chromium``; ``.ci/run`` installs it when missing).  They
skip, saying why, only when no Chromium executable can be found.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import threading
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from markupsafe import escape

from biobench import leaderboard as lb
from biobench.errors import BiobenchError
from biobench.site import SITE_MARKER, build_site, make_server, screenshot, slug

REPO = Path(__file__).resolve().parents[2]
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


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[lb.Built]]:
    """The site of the committed records, built as ``leaderboard build --html`` and ``make
    screenshot`` build it (claims corrected over every protocol, records verified)."""
    base = tmp_path_factory.mktemp("site")
    output = base / "out"
    _committed_runs(output)
    built = screenshot.site_pages(output, base / "html")
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
            if row.overrides:  # under its protocol row, the overrides spelled out
                shown = " + ".join([row.protocol_label, *row.overrides])
                assert f'<span class="overrides">{escape(shown)}</span>' in page
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


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    executable = screenshot.chromium()
    if executable is None:
        pytest.skip(
            "no Chromium executable found (install Debian's 'chromium' package, as .ci/run "
            "does, or set BIOBENCH_CHROMIUM)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        # --no-sandbox: CI containers run as root, where Chromium's sandbox cannot start.
        instance = playwright.chromium.launch(
            executable_path=executable, headless=True, args=["--no-sandbox"]
        )
        yield instance
        instance.close()


@pytest.fixture(scope="module")
def served(site: tuple[Path, list[lb.Built]]) -> Iterator[str]:
    root, _ = site
    server = make_server(root, 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def _column(page: object, table: str, metric: str) -> list[str]:
    """``data-v`` of a metric column's visible cells, top to bottom."""
    return page.eval_on_selector(  # type: ignore[attr-defined]
        f"#{table}",
        """(t, metric) => {
            const headers = Array.from(t.tHead.rows[0].cells);
            const i = headers.findIndex((h) => h.dataset.metric === metric);
            return Array.from(t.tBodies[0].rows).filter((r) => !r.hidden)
                .map((r) => r.cells[i].dataset.v);
        }""",
        metric,
    )


def test_browse_sort_filter_and_follow_a_run(
    browser: object, served: str, site: tuple[Path, list[lb.Built]]
) -> None:
    _, built = site
    quick = next(b for b in built if b.board.name == "quick")
    page = browser.new_page()  # type: ignore[attr-defined]
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    page.goto(served + "index.html")
    assert page.title() == "biobench leaderboards"
    page.click("#protocols a:text-is('quick')")
    page.wait_for_url("**/p/quick/index.html")

    # Sort by top-1 accuracy: first click puts the best first, the next reverses; rows without
    # a value stay last either way.
    header = "#measured th[data-metric='top1_accuracy']"
    page.click(header)
    values = _column(page, "measured", "top1_accuracy")
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers, reverse=True) and len(numbers) >= 3
    assert values[len(numbers) :] == [""] * (len(values) - len(numbers))
    means = quick.main.set_index("label")["top1_accuracy_mean"]
    best = max(
        quick.board.rows, key=lambda r: -1.0 if means[r.label] != means[r.label] else means[r.label]
    )
    first_row = page.eval_on_selector("#measured tbody tr", "r => r.dataset.key")
    assert first_row == best.key
    page.click(header)
    values = _column(page, "measured", "top1_accuracy")
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers)

    # Filter by fusion: only the rows of that fusion stay visible.
    page.select_option("select[data-filter='fusion_name']", "predicted")
    visible = page.eval_on_selector_all(
        "#measured tbody tr", "rows => rows.filter((r) => !r.hidden).map((r) => r.dataset.key)"
    )
    assert visible == [r.key for r in quick.board.rows if r.fusion_name == "predicted"]
    assert len(visible) >= 1
    page.select_option("select[data-filter='fusion_name']", "")
    assert len(page.locator("#measured tbody tr:not([hidden])").all()) == len(quick.board.rows)

    # Follow a row's link to its run page and find the record's protocol sha256 there.
    row = next(r for r in quick.board.rows if r.key == visible[0])
    page.click(f"tr[data-key='{row.key}'] td:first-child a")
    page.wait_for_url(f"**/p/quick/runs/{row.records[0].label}/seed-{row.records[0].seed}.html")
    sha = row.records[0].data["protocol"]["sha256"]
    assert page.text_content("#protocol-sha256").strip() == sha

    # Comparison picker: A/B to a precomputed page, with A and B as chosen in either order
    # (a page B vs A would flip the signs of every difference).
    for first, second in ((0, 1), (1, 0)):
        a, b = quick.board.rows[first], quick.board.rows[second]
        page.goto(served + "p/quick/index.html")
        page.select_option("form.compare-picker select[name='a']", a.key)
        page.select_option("form.compare-picker select[name='b']", b.key)
        page.click("form.compare-picker button")
        page.wait_for_url("**/p/quick/compare/*.html")
        assert page.locator("#comparison tbody tr").count() >= 1
        assert page.text_content("h1").strip() == f"{a.label} vs {b.label}"
        assert page.url.endswith(f"{slug(a.key)}--{slug(b.key)}.html")

    assert not errors, errors
    outside = [url for url in requests if not url.startswith(served)]
    assert not outside, f"requests outside the site: {outside}"
    assert any(url.endswith("static/site.js") for url in requests)
    page.close()


#: A phone and a desktop, in CSS pixels.
PHONE, DESKTOP = 390, 1400


def _width_pages(root: Path) -> list[str]:
    """The home page, every protocol page, and a run page and a comparison page of each."""
    pages = ["index.html"]
    for folder in sorted((root / "p").iterdir()):
        pages.append(f"p/{folder.name}/index.html")
        for pattern in ("runs/*/*.html", "compare/*.html"):
            first = next(iter(sorted(folder.glob(pattern))), None)
            if first is not None:
                pages.append(str(first.relative_to(root)))
    return pages


def test_pages_never_widen_and_the_headline_is_in_view(
    browser: object, served: str, site: tuple[Path, list[lb.Built]]
) -> None:
    """At 390 px no page is wider than the screen (wide tables scroll in their own box); at
    1400 px neither, and every protocol's headline column lies within the first screen."""
    root, built = site
    for width in (PHONE, DESKTOP):
        page = browser.new_page(viewport={"width": width, "height": 900})  # type: ignore[attr-defined]
        for path in _width_pages(root):
            page.goto(served + path)
            scroll_width = page.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= width, f"{path} is {scroll_width} px wide at {width} px"
        if width == DESKTOP:
            for item in built:
                headline = [m for m in item.board.headline if m in _shown(item)]
                if not headline or not item.board.rows:
                    continue
                page.goto(served + f"p/{item.board.name}/index.html")
                right = page.eval_on_selector(
                    f"#measured th[data-metric='{headline[-1]}']",
                    "(th) => th.getBoundingClientRect().right",
                )
                assert right <= width, (item.board.name, headline, right)
        page.close()


def _shown(item: lb.Built) -> list[str]:
    from biobench.site.protocol_page import shown_metrics

    return shown_metrics(item)


def test_the_readme_screenshot_is_current(site: tuple[Path, list[lb.Built]]) -> None:
    """docs/leaderboard-site.png shows the page the committed boards build now: its sidecar
    records the sha256 of the page and the site's CSS and JavaScript it was taken of."""
    root, _ = site
    png = REPO / "docs" / "leaderboard-site.png"
    recorded = json.loads(screenshot.sidecar(png).read_text(encoding="utf-8"))
    assert recorded["page"] == screenshot.PAGE
    assert png.stat().st_size > 20_000  # a picture, not an empty window
    assert recorded["inputs_sha256"] == screenshot.page_inputs(root), (
        "docs/leaderboard-site.png is stale (the boards, templates or styles changed since it "
        "was taken): run `make screenshot` and commit the picture and its .json"
    )


def test_leaderboard_serve_prints_its_url_and_serves_the_site(tmp_path: Path) -> None:
    _committed_runs(tmp_path)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "biobench",
            "leaderboard",
            "serve",
            "--protocol",
            "quick",
            "--output",
            str(tmp_path),
            "--port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        assert match, line + process.stderr.read()  # type: ignore[union-attr]
        with urllib.request.urlopen(match.group(0) + "p/quick/index.html", timeout=30) as reply:
            assert b"Leaderboard: quick" in reply.read()
    finally:
        process.terminate()
        process.wait(timeout=30)
    # Tables in the output folder were not rewritten by serve.
    assert not (tmp_path / "quick.csv").exists()


def test_run_page_curves_and_untrusted_score_paths(tmp_path: Path) -> None:
    output = tmp_path / "out"
    shutil.copytree(RUNS / "quick" / "case1-none", output / "runs" / "quick" / "case1-none")
    (tmp_path / "secret.txt").write_text("not for the site", encoding="utf-8")
    path = output / "runs" / "quick" / "case1-none" / "seed-0.json"
    record = json.loads(path.read_text(encoding="utf-8"))
    epochs = len(record["losses"]["identity"])
    record["train_accuracy"] = {
        "identity": [min(1.0, 0.1 * k) for k in range(epochs)],
        "attributes": [0.5] * epochs,
    }
    # A record is untrusted input: a score file listed outside its folder is not copied.
    record["artifacts"]["scores"]["stolen"] = "../../../../secret.txt"
    path.write_text(json.dumps(record), encoding="utf-8")
    # A record written before training accuracy was recorded (schema 1) has no accuracy curve.
    legacy_path = path.with_name("seed-1.json")
    legacy = json.loads(legacy_path.read_text(encoding="utf-8"))
    legacy.pop("train_accuracy", None)
    legacy_path.write_text(json.dumps(legacy), encoding="utf-8")
    site = build_site(screenshot.site_pages(output, tmp_path / "html"), tmp_path / "site")
    page = (site.root / "p" / "quick" / "runs" / "case1-none" / "seed-0.html").read_text(
        encoding="utf-8"
    )
    assert "training loss per epoch" in page and "training accuracy per epoch" in page
    # Two accuracy series, one polyline each, drawn on a 0..1 axis.
    chart = page[page.index("training accuracy per epoch") :]
    assert chart.count("<polyline") >= 2 and ">identity</text>" in chart
    assert "../../../../secret.txt" in page and "not found beside it" in page
    assert not any(f.endswith("secret.txt") for f in site.files)
    other = (site.root / "p" / "quick" / "runs" / "case1-none" / "seed-1.html").read_text(
        encoding="utf-8"
    )
    assert "training accuracy per epoch" not in other  # legacy record: no accuracy curves
