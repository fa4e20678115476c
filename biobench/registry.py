"""Registries of components, owned by the harness and filled through the register hooks."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from biobench.errors import DuplicateComponentError, PluginError, UnknownComponentError

KINDS = ("dataset", "backbone", "fusion", "optimizer", "metric", "exporter")


@dataclass(frozen=True)
class Entry:
    """One registered component: its factory and where it came from."""

    kind: str
    name: str
    factory: Callable[..., Any]
    plugin: str
    distribution: str | None
    version: str | None
    description: str = ""
    prefix: bool = False

    @property
    def origin(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "no distribution"
        return f"plugin '{self.plugin}' ({dist})"


@dataclass
class Registry:
    """Components of one kind, by name.  Duplicates are refused naming both origins."""

    kind: str
    entries: dict[str, Entry] = field(default_factory=dict)

    def add(self, entry: Entry) -> None:
        if not entry.name or not isinstance(entry.name, str):
            raise PluginError(f"{entry.origin} registered a {self.kind} with an invalid name")
        if not callable(entry.factory):
            raise PluginError(
                f"{entry.origin} registered {self.kind} '{entry.name}' with a non-callable factory"
            )
        if entry.name in self.entries:
            first = self.entries[entry.name]
            raise DuplicateComponentError(
                f"{self.kind} '{entry.name}' is registered twice: by {first.origin} "
                f"and by {entry.origin}"
            )
        self.entries[entry.name] = entry

    def names(self) -> list[str]:
        return sorted(n + (":<name>" if e.prefix else "") for n, e in self.entries.items())

    def get(self, name: str) -> tuple[Entry, dict[str, Any]]:
        """Return the entry for ``name`` and extra factory arguments (``variant`` for prefixes)."""
        if name in self.entries and not self.entries[name].prefix:
            return self.entries[name], {}
        head, sep, tail = name.partition(":")
        if sep and head in self.entries and self.entries[head].prefix and tail:
            return self.entries[head], {"variant": tail}
        raise UnknownComponentError(self.kind, name, self.names())

    def __contains__(self, name: object) -> bool:
        try:
            self.get(str(name))
        except UnknownComponentError:
            return False
        return True

    def __iter__(self) -> Iterator[Entry]:
        return iter(sorted(self.entries.values(), key=lambda e: e.name))

    def __len__(self) -> int:
        return len(self.entries)
