"""The declared plugin API: built-in plugins import biobench only through ``biobench.api``."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import biobench.api as api
from biobench.errors import BiobenchError
from biobench.options import as_numbers, parse_numbers

ROOT = Path(__file__).resolve().parents[2]
#: Code that is a plugin: it must need nothing of biobench beyond the declared API.
PLUGIN_TREES = [ROOT / "plugins", ROOT / "tests" / "example_plugin"]


def _plugin_modules() -> list[Path]:
    files = []
    for tree in PLUGIN_TREES:
        files += [p for p in tree.rglob("*.py") if ".egg-info" not in str(p)]
    return sorted(files)


def outside_api(source: str) -> list[tuple[int, str]]:
    """``(line, module)`` of each import of a biobench module other than ``biobench.api``
    (top-level or inside a function, ``import`` or ``from ... import``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            modules = [node.module]
            if node.module == "biobench":  # from biobench import api / hookimpl / contracts
                modules = [f"biobench.{alias.name}" for alias in node.names]
        else:
            continue
        for module in modules:
            if (
                module == "biobench" or module.startswith("biobench.")
            ) and module != "biobench.api":
                found.append((node.lineno, module))
    return found


def test_the_checker_finds_every_way_to_import_biobench() -> None:
    source = (
        "import biobench\n"
        "import biobench.contracts as c\n"
        "from biobench import hookimpl\n"
        "from biobench.imagecache import load_images\n"
        "def f():\n"
        "    from biobench.splits import split_indices\n"
        "from biobench.api import hookimpl\n"
        "from biobench import api\n"
        "import biobench_datasets.kumar\n"
        "from .local import thing\n"
    )
    assert outside_api(source) == [
        (1, "biobench"),
        (2, "biobench.contracts"),
        (3, "biobench.hookimpl"),
        (4, "biobench.imagecache"),
        (6, "biobench.splits"),
    ]


def test_plugins_import_only_the_declared_api() -> None:
    files = _plugin_modules()
    assert len(files) > 20, "the plugin trees were not found"
    offences = [
        f"{path.relative_to(ROOT)}:{line}: imports {module}"
        for path in files
        for line, module in outside_api(path.read_text())
    ]
    assert not offences, "plugins may import biobench only through biobench.api:\n" + "\n".join(
        offences
    )


def test_every_declared_name_resolves() -> None:
    assert len(set(api.__all__)) == len(api.__all__)
    assert set(api.__all__) == (
        set(api._SOURCES) | set(api._MODULES) | {"API_VERSION", "Register", "hookimpl"}
    )
    for name in api.__all__:
        assert getattr(api, name) is not None, name
    assert api.metrics_core.require_finite is not None
    with pytest.raises(AttributeError, match="plugin API"):
        api.PluginManager  # noqa: B018 - the harness's own, not promised


def test_importing_the_api_for_hookimpl_imports_no_torch() -> None:
    code = "import sys; from biobench.api import hookimpl; assert 'torch' not in sys.modules"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# -- the number-list helper --------------------------------------------------------------------


def test_as_numbers_takes_one_number_or_a_list() -> None:
    assert as_numbers("metric 'm'", "far", 0.1) == [0.1]
    assert as_numbers("metric 'm'", "far", [0.1, 1e-3], low=0, high=1, low_open=True) == [
        0.1,
        1e-3,
    ]
    assert as_numbers("c", "k", (1, 5), integer=True, low=1) == [1, 5]


@pytest.mark.parametrize(
    ("value", "kwargs", "message"),
    [
        ("high", {}, "c: option 'x' must be a number or a non-empty list of numbers, got 'high'"),
        ([], {}, "must be a number or a non-empty list of numbers, got []"),
        ([0.1, True], {}, "must be a number or a non-empty list of numbers"),
        ([1, 2.5], {"integer": True}, "must be an integer or a non-empty list of integers"),
        ([0.1, 1.0], {"low": 0, "high": 1, "high_open": True}, "every value in [0, 1), got 1.0"),
        ([float("nan")], {}, "every value in (-inf, inf), got nan"),
        ([1, 2, 1], {"unique": True}, "option 'x' lists 1 more than once"),
    ],
)
def test_as_numbers_refuses_with_one_wording(value, kwargs, message) -> None:  # noqa: ANN001
    with pytest.raises(BiobenchError) as err:
        as_numbers("c", "x", value, **kwargs)
    assert message in str(err.value)


def test_parse_numbers_reads_command_line_lists() -> None:
    assert parse_numbers("biobench run", "--seeds", "0, 1,2", integer=True) == [0, 1, 2]
    with pytest.raises(BiobenchError, match="comma-separated list of integers, got '0,x'"):
        parse_numbers("biobench run", "--seeds", "0,x", integer=True)
    with pytest.raises(BiobenchError, match="option '--seeds' lists no value"):
        parse_numbers("biobench run", "--seeds", " , ", integer=True)


# -- the stragglers: every plugin option error in the one wording ------------------------------


def _error(build) -> str:  # noqa: ANN001
    with pytest.raises(BiobenchError) as err:
        build()
    return str(err.value)


def test_dataset_and_optimizer_options_read_the_same(tmp_path: Path) -> None:
    import torch
    from biobench_datasets._archive import check_prepare_arguments
    from biobench_datasets.celeba import CelebA
    from biobench_reference.optimizers import build_modified_adamax
    from biobench_synthfaces.dataset import SynthFaces

    params = {"identity": [torch.nn.Parameter(torch.zeros(2))]}
    cases = [
        (lambda: CelebA(min_images=0), "dataset 'celeba': option 'min_images' must be >= 1, got 0"),
        (
            lambda: CelebA(split="all"),
            "dataset 'celeba': option 'split' must be one of 'official', 'none', got 'all'",
        ),
        (
            lambda: SynthFaces(identities=1),
            "dataset 'synthfaces': option 'identities' must be >= 2, got 1",
        ),
        (
            lambda: SynthFaces(cache="yes"),
            "dataset 'synthfaces': option 'cache' must be true or false, got 'yes'",
        ),
        (
            lambda: build_modified_adamax(params, betas=[0.9, 1.0]),
            "optimizer 'modified_adamax': option 'betas' must have every value in [0, 1), "
            "got 1.0 in [0.9, 1.0]",
        ),
        (
            lambda: build_modified_adamax(params, betas=[0.9]),
            "optimizer 'modified_adamax': option 'betas' must be two numbers, got [0.9]",
        ),
        (
            lambda: check_prepare_arguments("lfw", None, None, {"verfy": True}),
            "dataset 'lfw' prepare has no option 'verfy'; options: (none)",
        ),
    ]
    for build, message in cases:
        assert _error(build) == message


@pytest.mark.parametrize(
    ("metric", "options", "message"),
    [
        ("verification", {"far": [0.1, 1.5]}, r"option .far. must have every value in \(0, 1\)"),
        ("verification", {"c_miss": -1}, r"option 'c_miss' must have every value in \(0, inf\)"),
        ("verification", {"thresholds": ["high"]}, r"option 'thresholds' must be a number or a"),
        ("verification", {"thresholds": [float("nan")]}, r"option 'thresholds' must have every"),
        ("identification", {"k": [1, 2.5]}, r"option 'k' must be an integer or a non-empty list"),
        ("open_set_identification", {"fpir": 0}, r"option 'fpir' must have every value in \(0,"),
    ],
)  # fmt: skip
def test_the_metrics_plugin_number_options_read_as_every_option(
    metric: str, options: dict, message: str
) -> None:
    from biobench.rescoring import build_metric

    with pytest.raises(BiobenchError, match=rf"metric '{metric}': {message}"):
        build_metric(metric, options)
