"""The plugin manager: loading, registries, broken and duplicate plugins, the hook docs."""

from __future__ import annotations

import importlib.metadata as md
import inspect
import sys
import types
from pathlib import Path

import pytest

from biobench import hookimpl, hookspecs
from biobench.errors import BiobenchError, DuplicateComponentError, UnknownComponentError
from biobench.plugins import BUILTIN_PLUGINS, PluginManager
from biobench.testing import new_plugin_manager

ROOT = Path(__file__).resolve().parents[2]


def _module(name: str, **attrs: object) -> types.ModuleType:
    mod = types.ModuleType(name)
    for k, v in attrs.items():
        setattr(mod, k, v)
    return mod


def test_builtins_load_without_autoload() -> None:
    pm = PluginManager(autoload=False)
    names = {p["name"] for p in pm.describe()}
    assert {name for name, _ in BUILTIN_PLUGINS} <= names
    assert all(not p["broken"] for p in pm.describe())
    assert "synthfaces" in pm.registry("dataset")
    assert "vgg16" in pm.registry("backbone")


def test_autoload_finds_builtins_through_entry_points() -> None:
    pm = PluginManager(autoload=True)
    listing = {p["name"]: p for p in pm.describe()}
    for name, module in BUILTIN_PLUGINS:
        assert listing[name]["module"] == module
        assert listing[name]["distribution"] == "biobench"
        assert listing[name]["version"]


def test_env_disables_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    monkeypatch.setenv("BIOBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.setattr(md, "entry_points", lambda **kw: calls.append(kw) or [])
    PluginManager()
    assert calls == []


def test_unknown_name_suggests(biobench_pm: PluginManager) -> None:
    with pytest.raises(UnknownComponentError) as info:
        biobench_pm.get("backbone", "vgg61")
    message = str(info.value)
    assert "no backbone 'vgg61'" in message
    assert "did you mean 'vgg16'" in message
    assert "tiny_cnn" in message  # the listing of what exists


def test_duplicate_names_both_origins() -> None:
    pm = new_plugin_manager()

    @hookimpl
    def biobench_register_backbones(register):  # noqa: ANN001
        register("tiny_cnn", lambda **kw: None)

    pm.add(_module("dup_plugin", biobench_register_backbones=biobench_register_backbones))
    # Only the colliding name is unusable; every other component still works.
    assert "vgg16" in pm.registry("backbone")
    pm.get("fusion", "none")
    with pytest.raises(DuplicateComponentError) as info:
        pm.get("backbone", "tiny_cnn")
    assert "'biobench.testing_plugin'" in str(info.value) and "'dup_plugin'" in str(info.value)
    listing = {p["name"]: p for p in pm.describe()}
    assert listing["dup_plugin"]["collisions"] and listing["biobench.testing_plugin"]["collisions"]
    assert listing["reference"]["registered"]["backbone"]  # a built-in still lists its names


def test_plugins_command_shows_a_collision_and_exits_1(tmp_path: Path, run_cli) -> None:  # noqa: ANN001
    plugin = tmp_path / "dup_cli_plugin.py"
    plugin.write_text(
        "from biobench import hookimpl\n\n@hookimpl\ndef biobench_register_backbones(register):\n"
        "    register('tiny_cnn', lambda **kw: None)\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        result = run_cli("plugins", plugins=("biobench.testing_plugin", "dup_cli_plugin"))
    finally:
        sys.path.remove(str(tmp_path))
    assert result.exit_code == 1, result.output
    assert "COLLISION" in result.output and "dup_cli_plugin" in result.output


def test_unknown_block_name_is_a_warning(run_cli) -> None:  # noqa: ANN001
    result = run_cli("--block", "refrence", "plugins")
    assert "--block refrence: no plugin has that name" in result.output


def test_broken_plugin_is_listed_and_others_work(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    good = md.EntryPoint("good", "biobench.testing_plugin", "biobench")
    bad = md.EntryPoint("bad", "biobench_test_broken_module", "biobench")
    sys.modules.pop("biobench_test_broken_module", None)
    broken_src = "raise RuntimeError('boom at import')\n"
    (tmp_path / "biobench_test_broken_module.py").write_text(broken_src)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(md, "entry_points", lambda **kw: [good, bad])
    pm = PluginManager(autoload=True)
    listing = {p["name"]: p for p in pm.describe()}
    assert listing["bad"]["broken"] is True
    assert "boom at import" in listing["bad"]["error"]
    assert "tiny" in pm.registry("dataset")


def test_block_plugin(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BIOBENCH_BLOCK_PLUGINS", "synthfaces")
    pm = PluginManager(autoload=False)
    assert "synthfaces" not in {p["name"] for p in pm.describe()}
    assert "synthfaces" not in pm.registry("dataset")


def test_plugin_raising_in_register_hook_is_named() -> None:
    pm = new_plugin_manager()

    @hookimpl
    def biobench_register_metrics(register):  # noqa: ANN001
        raise ValueError("cannot register")

    pm.add(_module("raising_plugin", biobench_register_metrics=biobench_register_metrics))
    with pytest.raises(BiobenchError, match="raising_plugin.*cannot register"):
        pm.registry("metric")


def test_missing_plugin_module_is_bad_usage() -> None:
    with pytest.raises(BiobenchError, match="no_such_biobench_plugin"):
        PluginManager(autoload=False, extra_modules=["no_such_biobench_plugin"])


def test_lifecycle_hook_errors_do_not_stop() -> None:
    pm = new_plugin_manager()
    seen = []

    @hookimpl
    def biobench_run_started(run):  # noqa: ANN001
        seen.append(run["label"])
        raise RuntimeError("logger down")

    pm.add(_module("logger_plugin", biobench_run_started=biobench_run_started))
    problems = pm.notify("biobench_run_started", run={"label": "x"})
    assert seen == ["x"] and "logger_plugin" in problems[0]


def test_every_hook_is_documented() -> None:
    guide = (ROOT / "docs" / "plugins.md").read_text(encoding="utf-8")
    hooks = [
        (name, fn)
        for name, fn in inspect.getmembers(hookspecs, inspect.isfunction)
        if name.startswith("biobench_")
    ]
    assert len(hooks) >= 9
    for name, fn in hooks:
        doc = inspect.getdoc(fn) or ""
        assert len(doc) > 40, f"{name} needs a docstring"
        assert "Called" in doc, f"{name}'s docstring must say when it is called"
        assert name in guide, f"{name} is not documented in docs/plugins.md"


def test_lazy_reference_factories() -> None:
    pm = new_plugin_manager()

    @hookimpl
    def biobench_register_backbones(register):  # noqa: ANN001
        register("lazy_cnn", "biobench.testing_plugin:tiny_cnn")
        register("missing_cnn", "biobench_no_such_module:factory")

    pm.add(_module("lazy_plugin", biobench_register_backbones=biobench_register_backbones))
    entry, _ = pm.get("backbone", "lazy_cnn")
    assert entry.factory(image_size=16).output_dim == 16
    with pytest.raises(BiobenchError, match="lazy_plugin.*biobench_no_such_module"):
        _ = pm.get("backbone", "missing_cnn")[0].factory

    @hookimpl
    def biobench_register_fusions(register):  # noqa: ANN001
        register("bad", "not a reference")

    pm.add(_module("bad_plugin", biobench_register_fusions=biobench_register_fusions))
    with pytest.raises(BiobenchError, match="bad_plugin.*neither callable"):
        pm.registry("fusion")
