"""Exceptions that the CLI turns into one-line messages.

``BiobenchError`` (and subclasses) mean *bad input or bad usage*: the CLI prints the message on
one line and exits with status 2.  ``RunFailed`` means something broke while a run was already
under way: exit status 1 and a message saying what was kept.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from difflib import get_close_matches
from pathlib import Path


class BiobenchError(Exception):
    """Bad input or usage: reported as one line, exit status 2, nothing written."""


class ProtocolError(BiobenchError):
    """A protocol file is malformed: names the file and the key."""

    def __init__(self, source: str | Path, key: str | None, message: str) -> None:
        self.source = str(source)
        self.key = key
        where = f"{self.source}: key '{key}'" if key else self.source
        super().__init__(f"{where}: {message}")


class UnknownComponentError(BiobenchError):
    """A name that no registry knows, with suggestions."""

    def __init__(self, kind: str, name: str, available: Sequence[str]) -> None:
        self.kind, self.name, self.available = kind, name, list(available)
        close = get_close_matches(name, self.available, n=3, cutoff=0.5)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        listing = ", ".join(sorted(self.available)) or "(none registered)"
        super().__init__(f"no {kind} '{name}'{hint} available: {listing}")


class DuplicateComponentError(BiobenchError):
    """Two plugins registered the same name for one kind of component."""


class PluginError(BiobenchError):
    """A plugin misbehaved (raised in a hook, registered something invalid)."""


class DataNotFoundError(BiobenchError):
    """A dataset is not on disk: says where biobench looked and how to prepare it."""

    def __init__(self, dataset: str, looked_in: Iterable[str | Path], hint: str = "") -> None:
        self.dataset = dataset
        self.looked_in = [str(p) for p in looked_in]
        places = ", ".join(self.looked_in) or "(no location configured)"
        message = f"dataset '{dataset}' not found; looked in: {places}"
        if hint:
            message += f". {hint}"
        super().__init__(message)


class DataError(BiobenchError):
    """A dataset file is present but malformed (names the file and line)."""


class RunFailed(Exception):
    """A run broke after it started: exit status 1; the message says what was kept."""
