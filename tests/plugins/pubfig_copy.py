"""A tiny PubFig: index files in the published formats and a local web serving its images.

The web runs on 127.0.0.1 and plays the failure modes of the real one: dead links (404), changed
images (wrong md5), a slow host (sleeps past the client timeout), an HTML page instead of a photo,
and a flaky 503.  Tests outside test_datasets_pubfig.py get the web (``web``) and a prepared copy
(``prepared_pubfig``) as fixtures (tests/plugins/conftest.py).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from biobench_datasets.kumar import KUMAR_ATTRIBUTES
from biobench_datasets.pubfig import PubFig
from PIL import Image

HOME = "http://www.cs.columbia.edu/CAVE/databases/pubfig/"


def jpeg(seed: int, size: tuple[int, int] = (60, 50)) -> bytes:
    # Smooth gradients (distinct per seed) survive JPEG re-encoding, so crops can be compared.
    y, x = np.mgrid[0 : size[1], 0 : size[0]]
    pixels = np.stack([x * 4 + seed * 7, y * 5 + seed * 3, (x + y) * 2 + seed], axis=-1)
    pixels = (pixels % 256).astype(np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=90)
    return out.getvalue()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324


def write_index(
    folder: Path,
    subset: str,
    rows: list[tuple[str, int, str, str, str | None]],
    people: list[str],
    *,
    version: str = "1.2",
    eol: str = "\n",
) -> None:
    """Write <subset>_urls.txt and <subset>_people.txt exactly as published (v1.1: no md5)."""
    folder.mkdir(parents=True, exist_ok=True)
    fields = ["person", "imagenum", "url", "rect"] + (["md5sum"] if version == "1.2" else [])
    lines = [f"# PubFig Dataset v{version} - {subset}_urls.txt - {HOME}", "#\t" + "\t".join(fields)]
    for person, num, url, rect, checksum in rows:
        cells = [person, str(num), url, rect] + ([checksum or ""] if version == "1.2" else [])
        lines.append("\t".join(cells))
    (folder / f"{subset}_urls.txt").write_bytes((eol.join(lines) + eol).encode())
    lines = [f"# PubFig Dataset v{version} - {subset}_people.txt - {HOME}", "#\tperson", *people]
    (folder / f"{subset}_people.txt").write_bytes((eol.join(lines) + eol).encode())


def write_attributes(folder: Path, keys: list[tuple[str, int]], *, eol: str = "\n") -> None:
    lines = [
        f"# PubFig Dataset v1.2 - pubfig_attributes.txt - {HOME}",
        "\t".join(["#", "person", "imagenum", *KUMAR_ATTRIBUTES]),
    ]
    for person, num in keys:
        # "Male" positive for Brad Pitt only, every other attribute negative except "Smiling"
        # on odd image numbers: lets the test check values, not just shapes.
        values = [-0.5] * len(KUMAR_ATTRIBUTES)
        values[KUMAR_ATTRIBUTES.index("Male")] = 1.2 if person == "Brad Pitt" else -1.0
        values[KUMAR_ATTRIBUTES.index("Smiling")] = 0.7 if num % 2 else -0.7
        lines.append("\t".join([person, str(num), *(f"{v:.4f}" for v in values)]))
    (folder / "pubfig_attributes.txt").write_bytes((eol.join(lines) + eol).encode())


@dataclass
class Server:
    """A tiny web: path -> (behaviour, body); counts requests per path."""

    routes: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    hits: Counter = field(default_factory=Counter)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"


@contextmanager
def serve_web() -> Iterator[Server]:
    """A threaded HTTP server on 127.0.0.1 answering from ``Server.routes``; shut down on exit."""
    state = Server()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = self.path.lstrip("/")
            state.hits[path] += 1
            behaviour, body = state.routes.get(path, ("404", b""))
            if behaviour == "slow":
                time.sleep(1.0)  # longer than the client's timeout
            if behaviour == "404" or (behaviour == "flaky" and state.hits[path] == 1):
                code = 404 if behaviour == "404" else 503
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            kind = "text/html" if behaviour == "html" else "image/jpeg"
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            try:
                self.wfile.write(body)
            except OSError:  # the client gave up (timeout test)
                pass

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


FAST = {"timeout": 0.3, "retries": 0, "workers": 4, "progress": False}


def build_web(web: Server) -> tuple[list, dict[str, bytes]]:
    """Index rows covering every failure mode; returns (rows, bodies by image name)."""
    bodies = {f"ok{i}": jpeg(i) for i in range(6)}
    bodies["changed"] = jpeg(100)
    rows = [
        # Image numbers have holes (1, 2, 5, 9): the real files do too.
        ("Brad Pitt", 1, "ok0", "10,5,40,35", md5(bodies["ok0"])),
        ("Brad Pitt", 2, "ok1", "0,0,30,30", md5(bodies["ok1"])),
        ("Brad Pitt", 5, "gone", "10,5,40,35", md5(b"whatever")),
        ("Brad Pitt", 9, "ok2", "20,10,50,45", md5(bodies["ok2"])),
        ("Alyssa Milano", 3, "ok3", "10,5,40,35", md5(bodies["ok3"])),
        ("Alyssa Milano", 4, "changed", "10,5,40,35", md5(jpeg(101))),
        ("Alyssa Milano", 7, "slow", "10,5,40,35", md5(bodies["ok4"])),
        ("Alyssa Milano", 8, "page", "10,5,40,35", md5(b"<html>")),
        ("Alyssa Milano", 11, "ok5", "10,5,40,35", md5(bodies["ok5"])),
        ("Alyssa Milano", 12, "outside", "500,500,600,600", md5(bodies["ok0"])),
    ]
    for name, body in bodies.items():
        web.routes[f"img/{name}"] = ("ok", body)
    web.routes["img/slow"] = ("slow", bodies["ok4"])
    web.routes["img/page"] = ("html", b"<html><body>This domain is for sale</body></html>")
    web.routes["img/outside"] = ("ok", bodies["ok0"])
    rows = [(p, n, web.url(f"img/{name}"), rect, m) for p, n, name, rect, m in rows]
    return rows, bodies


def prepared_root(web: Server, tmp_path: Path) -> tuple[Path, list]:
    """A PubFig root prepared from ``web`` under tmp_path/pubfig; returns (root, index rows)."""
    rows, _ = build_web(web)
    source = tmp_path / "source"
    write_index(source, "dev", rows, ["Alyssa Milano", "Brad Pitt"], eol="\r\n")
    # One present image (Alyssa Milano 11) has no attribute row.
    write_attributes(source, [(p, n) for p, n, *_ in rows if (p, n) != ("Alyssa Milano", 11)])
    root = tmp_path / "pubfig"
    PubFig().prepare(root, source=source, **FAST)
    return root, rows
