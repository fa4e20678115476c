"""Registries of components, owned by the harness and filled through the register hooks."""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from biobench.errors import DuplicateComponentError, PluginError, UnknownComponentError

KINDS = ("dataset", "backbone", "fusion", "optimizer", "metric", "exporter", "preprocessing")


def is_reference(target: object) -> bool:
    """True for a lazy ``"package.module:attribute"`` factory reference."""
    if not isinstance(target, str):
        return False
    module, sep, attr = target.partition(":")
    return bool(sep and module and attr and all(p.isidentifier() for p in module.split(".")))


@dataclass
class Entry:
    """One registered component: its factory and where it came from.

    ``target`` is the factory itself or a ``"package.module:attribute"`` reference that is
    imported on first use, so a plugin registers many components without importing their
    (often heavy) modules, and the harness still sees the real factory and its signature.
    """

    kind: str
    name: str
    target: Callable[..., Any] | str
    plugin: str
    distribution: str | None
    version: str | None
    description: str = ""
    prefix: bool = False

    _loaded: Callable[..., Any] | None = field(default=None, repr=False, compare=False)

    @property
    def factory(self) -> Callable[..., Any]:
        """The factory, imported now if it was registered as a reference."""
        if self._loaded is None:
            if not isinstance(self.target, str):
                self._loaded = self.target
            else:
                module, _, attr = self.target.partition(":")
                try:
                    loaded = getattr(importlib.import_module(module), attr)
                except Exception as exc:  # noqa: BLE001 - reported with the plugin's name
                    raise PluginError(
                        f"{self.kind} '{self.name}' from {self.origin}: cannot load "
                        f"{self.target}: {type(exc).__name__}: {exc}"
                    ) from exc
                if not callable(loaded):
                    raise PluginError(f"{self.origin}: {self.target} is not callable")
                self._loaded = loaded
        return self._loaded

    def provenance(self, name: str) -> dict[str, Any]:
        """What a run record keeps about the component it used."""
        return {
            "name": name,
            "plugin": self.plugin,
            "distribution": self.distribution,
            "version": self.version,
        }

    @property
    def origin(self) -> str:
        dist = f"{self.distribution} {self.version}" if self.distribution else "no distribution"
        return f"plugin '{self.plugin}' ({dist})"


@dataclass
class Registry:
    """Components of one kind, by name.

    A name registered twice is unusable: asking for it raises an error naming both plugins,
    while every other name of the registry keeps working (one bad plugin must not stop runs
    that do not use it).
    """

    kind: str
    entries: dict[str, Entry] = field(default_factory=dict)
    #: Names registered by more than one plugin, with every claimant (first one first).
    collisions: dict[str, list[Entry]] = field(default_factory=dict)

    def add(self, entry: Entry) -> None:
        if not entry.name or not isinstance(entry.name, str):
            raise PluginError(f"{entry.origin} registered a {self.kind} with an invalid name")
        if not (callable(entry.target) or is_reference(entry.target)):
            raise PluginError(
                f"{entry.origin} registered {self.kind} '{entry.name}' with a factory that is "
                f"neither callable nor a 'module:attribute' reference"
            )
        if entry.name in self.collisions:
            self.collisions[entry.name].append(entry)
            return
        if entry.name in self.entries:
            # Both claim the name: neither is used, and only runs that ask for it fail.
            first = self.entries.pop(entry.name)
            self.collisions[entry.name] = [first, entry]
            return
        self.entries[entry.name] = entry

    def collision_message(self, name: str) -> str:
        origins = " and by ".join(e.origin for e in self.collisions[name])
        return f"{self.kind} '{name}' is registered twice: by {origins}; block one with --block"

    def names(self) -> list[str]:
        return sorted(n + (":<name>" if e.prefix else "") for n, e in self.entries.items())

    def get(self, name: str) -> tuple[Entry, dict[str, Any]]:
        """Return the entry for ``name`` and extra factory arguments (``variant`` for prefixes)."""
        head = name.partition(":")[0]
        for candidate in (name, head):
            if candidate in self.collisions:
                raise DuplicateComponentError(self.collision_message(candidate))
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
