"""Protocol files: strict schema, defaults, extends, overrides, the shipped protocols."""

from __future__ import annotations

from pathlib import Path

import pytest

from biobench.errors import BiobenchError, ProtocolError, UnknownComponentError
from biobench.plugins import PluginManager
from biobench.protocol import ProtocolIndex, load_protocol, parse_override
from biobench.testing import TINY_PROTOCOL


def write(tmp_path: Path, text: str, name: str = "p.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_tiny_protocol_loads_with_defaults(tmp_path: Path) -> None:
    p = load_protocol(write(tmp_path, TINY_PROTOCOL))
    assert (p.name, p.version) == ("tiny", 1)
    runs = p.runs()
    assert [r.label for r in runs] == ["none", "ground-truth", "attributes-alone"]
    assert runs[1].model["fusion"] == "ground_truth"
    assert runs[2].training["tasks"] == ["attributes"]
    assert runs[0].dataset["split"]["rule"] == "per_identity"  # a default
    assert runs[0].seeds == [0, 1]
    assert len(p.sha256) == 64


def test_unknown_key_names_file_and_key(tmp_path: Path) -> None:
    path = write(tmp_path, TINY_PROTOCOL.replace("hidden = 32", "hiden = 32"))
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    msg = str(info.value)
    assert str(path) in msg and "model.hiden" in msg and "did you mean 'hidden'" in msg


def test_string_where_number_belongs(tmp_path: Path) -> None:
    path = write(tmp_path, TINY_PROTOCOL.replace("epochs = 2", 'epochs = "two"'))
    with pytest.raises(ProtocolError, match=r"training\.epochs.*expected an integer"):
        load_protocol(path)


def test_bool_is_not_an_integer(tmp_path: Path) -> None:
    path = write(tmp_path, TINY_PROTOCOL.replace("version = 1", "version = true"))
    with pytest.raises(ProtocolError, match="'version'"):
        load_protocol(path)


def test_missing_required_key(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="'version'.*required"):
        load_protocol(write(tmp_path, TINY_PROTOCOL.replace("version = 1\n", "")))


def test_invalid_toml(tmp_path: Path) -> None:
    with pytest.raises(ProtocolError, match="invalid TOML"):
        load_protocol(write(tmp_path, "name = \n"))


def test_extends_merges_tables(tmp_path: Path) -> None:
    write(tmp_path, TINY_PROTOCOL, "base.toml")
    child = write(
        tmp_path,
        'extends = "base.toml"\nname = "tiny-long"\nversion = 3\n[training]\nepochs = 5\n',
        "child.toml",
    )
    p = load_protocol(child)
    assert (p.name, p.version) == ("tiny-long", 3)
    run = p.runs()[0]
    assert run.training["epochs"] == 5 and run.training["batch_size"] == 16
    assert len(p.sources) == 2


def test_extends_by_name_reads_the_protocol_beside_it(tmp_path: Path) -> None:
    # How verify and reproduce read a record's protocol file back: by path, with no index of
    # protocols; ``extends = "base"`` (a name, as quick-pretrain extends quick) must resolve.
    base = load_protocol(write(tmp_path, TINY_PROTOCOL, "base.toml"))
    child = write(tmp_path, 'extends = "base"\nname = "tiny-2"\nversion = 2\n', "child.toml")
    p = load_protocol(child)
    assert p.sources == [str(child), str(tmp_path / "base.toml")]
    assert p.runs()[0].training == base.runs()[0].training


def test_circular_extends(tmp_path: Path) -> None:
    write(tmp_path, 'extends = "b.toml"\nname = "a"\nversion = 1\n', "a.toml")
    write(tmp_path, 'extends = "a.toml"\nname = "b"\nversion = 1\n', "b.toml")
    with pytest.raises(ProtocolError, match="circular"):
        load_protocol(tmp_path / "a.toml")


def test_overrides_and_seeds(tmp_path: Path) -> None:
    p = load_protocol(write(tmp_path, TINY_PROTOCOL))
    runs = p.runs([parse_override("training.epochs=7"), parse_override("model.fusion=film")], [5])
    assert all(r.training["epochs"] == 7 and r.model["fusion"] == "film" for r in runs)
    assert all(r.seeds == [5] for r in runs)
    free = parse_override("model.backbone_options.width=0.5")
    assert free == ("model.backbone_options.width", 0.5)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("training.epoch=3", "unknown key"),
        ("nonsense=1", "unknown key"),
        ("training.epochs=three", "expected an integer"),
        ("training.epochs", "expected key=value"),
    ],
)
def test_bad_overrides(text: str, match: str) -> None:
    with pytest.raises(BiobenchError, match=match):
        parse_override(text)


def test_unknown_run_label(tmp_path: Path) -> None:
    p = load_protocol(write(tmp_path, TINY_PROTOCOL))
    with pytest.raises(BiobenchError, match="no run"):
        p.runs(only=["nope"])


def test_shipped_protocols_validate_and_resolve() -> None:
    pm = PluginManager(autoload=False)
    index = ProtocolIndex(pm.protocol_dirs())
    assert "quick" in index.names()
    for name in index.names():
        protocol = index.load(name)
        assert protocol.citation, f"{name} needs a citation"
        for spec in protocol.runs():
            pm.get("dataset", spec.dataset["name"])
            pm.get("fusion", spec.model["fusion"])
            pm.get("optimizer", spec.training["optimizer"])
            for metric in spec.metrics:
                pm.get("metric", metric["name"])
    with pytest.raises(UnknownComponentError, match="did you mean 'quick'"):
        index.load("quik")


def test_switching_component_drops_its_options(tmp_path: Path) -> None:
    text = TINY_PROTOCOL.replace("hidden = 32", "hidden = 32\nbackbone_options = { width = 4 }")
    text += '\n[[runs]]\nlabel = "other"\nmodel.backbone = "vgg16"\n'
    p = load_protocol(write(tmp_path, text))
    runs = {r.label: r for r in p.runs()}
    assert runs["none"].model["backbone_options"] == {"width": 4}
    assert runs["other"].model["backbone_options"] == {}
    # The same rule for --backbone / --set, and options given with the switch are kept.
    switched = p.runs([("model.backbone", "timm:resnet10t")])
    assert all(r.model["backbone_options"] == {} for r in switched)
    kept = p.runs([("model.backbone", "tiny_cnn")])
    assert kept[0].model["backbone_options"] == {"width": 4}
    given = p.runs([("model", {"backbone": "vgg16", "backbone_options": {"batch_norm": True}})])
    assert given[0].model["backbone_options"] == {"batch_norm": True}


def test_run_requiring_a_missing_distribution_is_skipped(tmp_path: Path) -> None:
    from biobench.engine import Engine, RunOptions
    from biobench.testing import new_plugin_manager

    text = TINY_PROTOCOL + (
        '\n[[runs]]\nlabel = "optional"\nrequires = ["no-such-biobench-plugin"]\n'
        'model.backbone = "not_installed_backbone"\n'
    )
    p = load_protocol(write(tmp_path, text))
    engine = Engine(new_plugin_manager(), RunOptions(output=tmp_path / "o", log=lambda m: None))
    plan = engine.prepare(p, p.runs(seeds=[0]))
    assert [item.spec.label for item in plan.runs] == ["none", "ground-truth", "attributes-alone"]
    assert "no-such-biobench-plugin" in plan.skipped[0]
