"""The plugin manager: loads plugins, collects their components into registries.

Built-in plugins are declared in biobench's own ``pyproject.toml`` under the ``biobench``
entry-point group, exactly as a third party declares theirs, so every run exercises the
third-party path.  ``BIOBENCH_DISABLE_PLUGIN_AUTOLOAD=1`` turns entry-point loading off (then only
the built-ins named in :data:`BUILTIN_PLUGINS` and modules passed with ``-p`` load);
``BIOBENCH_BLOCK_PLUGINS=name1,name2`` (or ``--block``) blocks plugins by entry-point name.  A
plugin whose import raises is recorded as broken, with its error, and the others keep working.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata as md
import importlib.util
import os
import traceback
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import pluggy

from biobench import hookspecs
from biobench.errors import BiobenchError, PluginError
from biobench.options import check_signature
from biobench.registry import KINDS, Entry, Registry

ENTRY_POINT_GROUP = "biobench"
AUTOLOAD_ENV = "BIOBENCH_DISABLE_PLUGIN_AUTOLOAD"
BLOCK_ENV = "BIOBENCH_BLOCK_PLUGINS"

#: Built-in plugins, by entry-point name and module.  They are loaded through their entry
#: points like any third-party plugin; this tuple is used only when autoload is disabled.
BUILTIN_PLUGINS: tuple[tuple[str, str], ...] = (
    ("protocols", "biobench_protocols"),
    ("metrics", "biobench_metrics"),
    ("reference", "biobench_reference"),
    ("synthfaces", "biobench_synthfaces"),
    ("datasets", "biobench_datasets"),
)

_HOOK_FOR_KIND = {
    "dataset": "biobench_register_datasets",
    "backbone": "biobench_register_backbones",
    "fusion": "biobench_register_fusions",
    "optimizer": "biobench_register_optimizers",
    "metric": "biobench_register_metrics",
    "exporter": "biobench_register_exporters",
    "preprocessing": "biobench_register_preprocessing",
}


@dataclass
class PluginInfo:
    """What biobench knows about one plugin: where it came from and what it provided."""

    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    registered: dict[str, list[str]] = field(default_factory=dict)

    @property
    def broken(self) -> bool:
        return self.error is not None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "module": self.module,
            "distribution": self.distribution,
            "version": self.version,
            "builtin": self.builtin,
            "hooks": sorted(self.hooks),
            "registered": {k: sorted(v) for k, v in sorted(self.registered.items()) if v},
            "broken": self.broken,
            "error": self.error,
        }


def _dist_of(ep: md.EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


@functools.cache
def _packages_distributions() -> dict[str, list[str]]:
    # Scanning every installed distribution's file list takes about a second: do it once.
    return md.packages_distributions()


def _dist_of_module(module_name: str) -> tuple[str | None, str | None]:
    top = module_name.split(".")[0]
    for dist_name in _packages_distributions().get(top, []):
        try:
            return dist_name, md.version(dist_name)
        except md.PackageNotFoundError:  # pragma: no cover - broken metadata
            continue
    return None, None


class Built(NamedTuple):
    """A component instance and its provenance (name, plugin, distribution, version)."""

    component: Any
    provenance: dict[str, Any]


class PluginManager:
    """A fresh set of plugins and registries.  Create one per run; nothing is global."""

    def __init__(
        self,
        *,
        autoload: bool | None = None,
        extra_modules: Sequence[str | ModuleType] = (),
        block: Iterable[str] = (),
        load_builtins: bool = True,
    ) -> None:
        if autoload is None:
            autoload = os.environ.get(AUTOLOAD_ENV, "").strip() not in {"1", "true", "yes"}
        blocked = {b.strip() for b in os.environ.get(BLOCK_ENV, "").split(",") if b.strip()}
        blocked |= set(block)
        self.blocked = blocked
        #: How to build an identical manager in another process (``--jobs`` workers).
        self.spec: dict[str, Any] = {
            "autoload": autoload,
            "extra_modules": [m for m in extra_modules if isinstance(m, str)],
            "block": sorted(blocked),
            "load_builtins": load_builtins,
        }
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self.plugins: dict[str, PluginInfo] = {}
        self._registries: dict[str, Registry] | None = None
        builtin_modules = {module for _, module in BUILTIN_PLUGINS}

        if autoload:
            for ep in sorted(md.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
                if ep.name in blocked or ep.name in self.plugins:
                    continue
                dist, version = _dist_of(ep)
                info = PluginInfo(
                    ep.name, ep.value, dist, version, builtin=ep.value in builtin_modules
                )
                self._load(info, ep.load)
        elif load_builtins:
            for name, module in BUILTIN_PLUGINS:
                if name in blocked:
                    continue
                dist, version = _dist_of_module(module)
                info = PluginInfo(name, module, dist, version, builtin=True)
                self._load(info, lambda m=module: importlib.import_module(m))
        for extra in extra_modules:
            self.add(extra)
        known = {name for name, _ in BUILTIN_PLUGINS} | set(self.plugins)
        if blocked and autoload:
            known |= {ep.name for ep in md.entry_points(group=ENTRY_POINT_GROUP)}
        known |= {m if isinstance(m, str) else getattr(m, "__name__", "") for m in extra_modules}
        #: Problems worth a warning that do not stop anything (a misspelled --block name).
        self.warnings: list[str] = [
            f"--block {name}: no plugin has that name; plugins: {', '.join(sorted(known))}"
            for name in sorted(blocked - known)
        ]

    # -- loading ------------------------------------------------------------------------------

    def _load(self, info: PluginInfo, loader: Any) -> None:
        self.plugins[info.name] = info
        try:
            obj = loader()
            self.pm.register(obj, name=info.name)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break the others
            last = traceback.extract_tb(exc.__traceback__)[-1:] or []
            where = f" ({Path(last[0].filename).name}:{last[0].lineno})" if last else ""
            info.error = f"{type(exc).__name__}: {exc}{where}"
            return
        info.hooks = sorted(
            h.name for h in (self.pm.get_hookcallers(obj) or []) if h.name.startswith("biobench_")
        )
        self._registries = None

    def add(self, plugin: str | ModuleType | object, name: str | None = None) -> PluginInfo:
        """Add a plugin given as a module path (``-p``), a module, or any object with hooks."""
        if isinstance(plugin, str):
            module_name = plugin
            name = name or module_name
            try:
                found = importlib.util.find_spec(module_name) is not None
            except (ImportError, ValueError):
                found = False
            if not found:
                raise BiobenchError(f"plugin module '{module_name}' not found (given with -p)")
            dist, version = _dist_of_module(module_name)
            info = PluginInfo(name, module_name, dist, version)
            if module_name not in self.spec["extra_modules"]:
                self.spec["extra_modules"].append(module_name)
            if name not in self.blocked:
                self._load(info, lambda: importlib.import_module(module_name))
            return info
        module_name = getattr(plugin, "__name__", type(plugin).__name__)
        info = PluginInfo(name or module_name, module_name)
        self._load(info, lambda: plugin)
        return info

    # -- registries ---------------------------------------------------------------------------

    @property
    def registries(self) -> dict[str, Registry]:
        if self._registries is None:
            self._registries = self._build_registries()
        return self._registries

    def registry(self, kind: str) -> Registry:
        return self.registries[kind]

    def get(self, kind: str, name: str) -> tuple[Entry, dict[str, Any]]:
        return self.registries[kind].get(name)

    def build(self, kind: str, name: str, options: Mapping[str, Any], **fixed: Any) -> Built:
        """Instantiate a registered component with the user's ``options`` and the harness's
        ``fixed`` arguments, checking option names against the factory's signature.

        Every failure is one :class:`BiobenchError` naming the component and its plugin and
        distribution; a plugin that raises for a reason of its own is a :class:`PluginError`.
        """
        entry, extra = self.get(kind, name)
        component = f"{kind} '{name}'"
        check_signature(component, entry.factory, options, supplied={*fixed, *extra})
        try:
            made = entry.factory(**{**fixed, **extra, **options})
        except BiobenchError as exc:
            raise BiobenchError(f"{exc} [{entry.origin}]") from exc
        except TypeError as exc:
            raise BiobenchError(f"{component} ({entry.origin}): bad options: {exc}") from exc
        except Exception as exc:  # noqa: BLE001 - a plugin bug is reported with its origin
            raise PluginError(
                f"{component} from {entry.origin} raised {type(exc).__name__}: {exc}"
            ) from exc
        return Built(made, entry.provenance(name))

    def _build_registries(self) -> dict[str, Registry]:
        registries = {kind: Registry(kind) for kind in KINDS}
        for info in self.plugins.values():
            info.registered = {}
        for kind, hook_name in _HOOK_FOR_KIND.items():
            for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
                info = self.plugins.get(impl.plugin_name) or PluginInfo(
                    impl.plugin_name, impl.plugin_name
                )

                def register(
                    name: str,
                    factory: Any,
                    *,
                    description: str = "",
                    prefix: bool = False,
                    _kind: str = kind,
                    _info: PluginInfo = info,
                ) -> None:
                    doc = "" if isinstance(factory, str) else (factory.__doc__ or "")
                    summary = doc.strip().split("\n")[0]
                    registries[_kind].add(
                        Entry(
                            kind=_kind,
                            name=name,
                            target=factory,
                            plugin=_info.name,
                            distribution=_info.distribution,
                            version=_info.version,
                            description=description or summary,
                            prefix=prefix,
                        )
                    )
                    _info.registered.setdefault(_kind, []).append(
                        name + (":<name>" if prefix else "")
                    )

                try:
                    impl.function(register)
                except BiobenchError:
                    raise
                except Exception as exc:  # noqa: BLE001
                    raise PluginError(
                        f"plugin '{info.name}' ({info.distribution or 'no distribution'}) raised "
                        f"in {hook_name}: {type(exc).__name__}: {exc}"
                    ) from exc
        return registries

    # -- protocols and lifecycle --------------------------------------------------------------

    def protocol_dirs(self) -> list[tuple[str, Path]]:
        """Directories of protocol files, each with the plugin that ships it."""
        dirs: list[tuple[str, Path]] = []
        for impl in self.pm.hook.biobench_protocol_dirs.get_hookimpls():
            try:
                result = impl.function()
            except Exception as exc:  # noqa: BLE001
                raise PluginError(
                    f"plugin '{impl.plugin_name}' raised in biobench_protocol_dirs: {exc}"
                ) from exc
            for d in result or ():
                dirs.append((impl.plugin_name, Path(d)))
        return dirs

    def notify(self, hook_name: str, **kwargs: Any) -> list[str]:
        """Call a lifecycle hook; errors are collected (with the plugin name), never raised."""
        problems: list[str] = []
        for impl in getattr(self.pm.hook, hook_name).get_hookimpls():
            try:
                args = {k: v for k, v in kwargs.items() if k in impl.argnames}
                impl.function(**args)
            except Exception as exc:  # noqa: BLE001
                problems.append(f"plugin '{impl.plugin_name}' raised in {hook_name}: {exc}")
        return problems

    def describe(self) -> list[dict[str, Any]]:
        """Every plugin with its distribution, hooks and registered names (for ``plugins``)."""
        try:
            _ = self.registries
        except BiobenchError as exc:
            # Registration errors are reported on the listing instead of hiding every plugin.
            return [info.as_dict() for info in self.plugins.values()] + [
                {"name": "(registries)", "broken": True, "error": str(exc)}
            ]
        listing = []
        shipped, dir_warnings = self._shipped_protocols()
        collided: dict[str, list[str]] = {}
        for registry in self.registries.values():
            for name, entries in registry.collisions.items():
                for e in entries:
                    collided.setdefault(e.plugin, []).append(registry.collision_message(name))
        for info in sorted(self.plugins.values(), key=lambda i: i.name):
            entry = info.as_dict()
            if info.name in collided:
                entry["collisions"] = sorted(set(collided[info.name]))
            if shipped.get(info.name):
                entry["registered"]["protocol"] = sorted(shipped[info.name])
            if dir_warnings.get(info.name):
                entry["warnings"] = dir_warnings[info.name]
            listing.append(entry)
        return listing

    def _shipped_protocols(self) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
        """Protocol names per plugin, and per plugin the protocol directories it declares that
        hold nothing: a directory that does not exist or has no ``*.toml`` (often a packaging
        slip: the protocol files were left out of the installed distribution)."""
        shipped: dict[str, list[str]] = {}
        warnings: dict[str, list[str]] = {}
        for impl in self.pm.hook.biobench_protocol_dirs.get_hookimpls():
            try:
                directories = [Path(d) for d in impl.function() or ()]
            except Exception:  # noqa: BLE001 - reported with its error when protocols are used
                continue
            for directory in directories:
                names = sorted(p.stem for p in directory.glob("*.toml"))
                shipped.setdefault(impl.plugin_name, []).extend(names)
                if not directory.is_dir():
                    problem = "does not exist"
                elif not names:
                    problem = "holds no *.toml protocol file"
                else:
                    continue
                warnings.setdefault(impl.plugin_name, []).append(
                    f"protocol directory {directory} {problem} (declared by its "
                    f"biobench_protocol_dirs; were the protocol files packaged?)"
                )
        return shipped, warnings
