"""Serving the website: a static-file HTTP server on the loopback interface.

``biobench leaderboard serve`` builds the site and serves it with :func:`serve`; only
127.0.0.1 by default, since the site is for local viewing.  Requests are not logged.
"""

from __future__ import annotations

import http.server
from pathlib import Path
from typing import Any

from biobench.errors import BiobenchError

__all__ = ["make_server", "serve"]


def make_server(root: Path, port: int = 8000, host: str = "127.0.0.1") -> Any:
    """An HTTP server for the static files under ``root`` (not yet serving).

    :raises BiobenchError: when ``host:port`` cannot be bound (e.g. the port is taken).
    """
    import functools

    handler = functools.partial(_QuietHandler, directory=str(root))
    try:
        return http.server.ThreadingHTTPServer((host, port), handler)
    except OSError as exc:
        raise BiobenchError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None


def serve(root: Path, port: int = 8000, host: str = "127.0.0.1", announce: Any = print) -> None:
    """Serve ``root`` over HTTP on ``host:port`` until interrupted (``port`` 0: any free port).

    Only the loopback interface by default: the site is for local viewing.
    """
    with make_server(root, port, host) as server:
        announce(f"Serving {root} at http://{host}:{server.server_address[1]}/ (Ctrl-C stops)")
        server.serve_forever()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    """Static files without a log line per request."""

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass
