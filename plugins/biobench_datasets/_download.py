"""Bounded HTTP downloads for dataset preparation (standard library only).

Datasets such as PubFig are published as lists of URLs on third-party web servers, many of them
dead, slow or replaced by HTML pages.  :func:`fetch` never hangs: every socket operation has a
timeout, the whole request has a deadline, the body has a size cap, and the outcome is returned
as a classified :class:`Fetched` instead of an exception, so thousands of downloads can run in a
thread pool and be summarised in a report.  Nothing here is imported at run time: only
``biobench data prepare`` uses it.
"""

from __future__ import annotations

import http.client
import ssl
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass

from biobench.api import write_bytes

#: Outcomes of :func:`fetch`.  ``unreachable`` covers DNS failures, refused and reset
#: connections and TLS errors: the host is gone or the machine is offline.
FETCH_STATUSES = ("ok", "http_error", "unreachable", "timeout", "too_large", "bad_url")

#: Some image hosts refuse urllib's default agent; say honestly who is asking.
USER_AGENT = "Mozilla/5.0 (compatible; biobench dataset preparation)"


@dataclass
class Fetched:
    """The classified outcome of one download."""

    status: str
    body: bytes | None = None
    detail: str = ""
    http_status: int | None = None
    attempts: int = 1

    @property
    def answered(self) -> bool:
        """True when a server sent an HTTP response (so the network itself works)."""
        return self.http_status is not None


def fetch(
    url: str,
    *,
    timeout: float = 10.0,
    deadline: float | None = None,
    max_bytes: int = 32 * 1024 * 1024,
    retries: int = 2,
    retry_wait: float = 0.5,
) -> Fetched:
    """Download ``url`` into memory with bounded time and size.

    :param timeout: seconds allowed for connecting and for each read.
    :param deadline: seconds allowed for the whole request, body included (default
        ``6 * timeout``): a server that trickles bytes cannot hold a worker forever.
    :param max_bytes: larger bodies are abandoned (``too_large``): no face photo is that big.
    :param retries: extra attempts after a timeout, an unreachable host, an HTTP 5xx or 429
        (transient); 4xx answers are final.
    :param retry_wait: seconds before the first retry, doubled after each.
    """
    total = deadline if deadline is not None else 6 * timeout
    wait = retry_wait
    result = Fetched("bad_url")
    for attempt in range(1, retries + 2):
        result = _fetch_once(url, timeout, total, max_bytes)
        result.attempts = attempt
        transient = result.status in ("timeout", "unreachable") or (
            result.status == "http_error"
            and result.http_status is not None
            and (result.http_status >= 500 or result.http_status == 429)
        )
        if not transient or attempt > retries:
            break
        time.sleep(wait)
        wait *= 2
    return result


def _fetch_once(url: str, timeout: float, total: float, max_bytes: int) -> Fetched:
    # Index files come from third parties: never let one point urllib at file:// or ftp://.
    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https"):
        return Fetched("bad_url", detail=f"not an http(s) URL: {url[:80]}")
    started = time.monotonic()
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
            status = getattr(response, "status", 200)
            declared = response.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                return Fetched("too_large", detail=f"{declared} bytes", http_status=status)
            chunks: list[bytes] = []
            size = 0
            while True:
                if time.monotonic() - started > total:
                    return Fetched(
                        "timeout", detail=f"body not complete after {total:g} s", http_status=status
                    )
                chunk = response.read(64 * 1024)
                if not chunk:
                    break
                size += len(chunk)
                if size > max_bytes:
                    return Fetched(
                        "too_large", detail=f"over {max_bytes} bytes", http_status=status
                    )
                chunks.append(chunk)
            return Fetched("ok", body=b"".join(chunks), http_status=status)
    except urllib.error.HTTPError as exc:
        return Fetched("http_error", detail=f"HTTP {exc.code}", http_status=exc.code)
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            return Fetched("timeout", detail=f"no answer within {timeout:g} s")
        return Fetched("unreachable", detail=_describe(reason))
    except TimeoutError:
        return Fetched("timeout", detail=f"no data within {timeout:g} s")
    except (http.client.HTTPException, ConnectionError, ssl.SSLError, OSError) as exc:
        return Fetched("unreachable", detail=_describe(exc))
    except ValueError as exc:  # malformed URL (unknown scheme, bad port)
        return Fetched("bad_url", detail=str(exc))


def _describe(reason: object) -> str:
    if isinstance(reason, BaseException):
        text = str(reason) or type(reason).__name__
        return f"{type(reason).__name__}: {text}" if str(reason) else text
    return str(reason)


#: Readers see either nothing or the whole file.
atomic_write = write_bytes
