"""Tests of the reference plugin's backbones: ``vgg16`` (the paper's Net1) and ``timm:<name>``.

Nothing here touches the network: pretrained loading is exercised against forced offline mode,
local servers on 127.0.0.1 that hang, refuse or answer 404, and a hand-built hub cache.
"""

from __future__ import annotations

import http.server
import socket
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from biobench.errors import BiobenchError, UnknownComponentError
from biobench.plugins import PluginManager

TIMM_VGG16_FEATURE_PARAMS = 14_714_688


@pytest.fixture(scope="module")
def registry(reference_pm: PluginManager) -> Any:
    return reference_pm.registry("backbone")


def build(registry: Any, name: str, image_size: int, in_channels: int = 3, **options: Any) -> Any:
    entry, extra = registry.get(name)
    return entry.factory(image_size=image_size, in_channels=in_channels, **options, **extra)


# ---------------------------------------------------------------------------------------------
# vgg16
# ---------------------------------------------------------------------------------------------


def test_vgg16_full_width_matches_timm(registry: Any) -> None:
    import timm

    for batch_norm, timm_name in ((False, "vgg16"), (True, "vgg16_bn")):
        # Meta tensors: shapes without memory or initialisation cost.
        with torch.device("meta"):
            mine = build(registry, "vgg16", 224, batch_norm=batch_norm)
            theirs = timm.create_model(timm_name, pretrained=False)
        own = {k: tuple(v.shape) for k, v in mine.state_dict().items()}
        reference = {
            k: tuple(v.shape) for k, v in theirs.state_dict().items() if k.startswith("features.")
        }
        assert own == reference  # same layer indices and shapes: timm checkpoints load as is
        count = sum(p.numel() for p in mine.parameters())
        timm_count = sum(p.numel() for p in theirs.features.parameters())
        assert count == timm_count
    plain = build(registry, "vgg16", 224)
    assert sum(p.numel() for p in plain.parameters()) == TIMM_VGG16_FEATURE_PARAMS
    assert plain.output_dim == 512 * 7 * 7


def test_vgg16_structure(registry: Any) -> None:
    model = build(registry, "vgg16", 32, width=0.125)
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    pools = [m for m in model.modules() if isinstance(m, nn.MaxPool2d)]
    relus = [m for m in model.modules() if isinstance(m, nn.ReLU)]
    assert len(convs) == 13 and len(relus) == 13 and len(pools) == 5
    for conv in convs:
        assert conv.kernel_size == (3, 3) and conv.stride == (1, 1) and conv.padding == (1, 1)
    for pool in pools:
        assert pool.kernel_size == 2 and pool.stride == 2
    assert not any(isinstance(m, nn.BatchNorm2d) for m in model.modules())
    with_bn = build(registry, "vgg16", 32, width=0.125, batch_norm=True)
    assert sum(isinstance(m, nn.BatchNorm2d) for m in with_bn.modules()) == 13


@pytest.mark.parametrize("width", [0.0625, 0.125, 0.25])
@pytest.mark.parametrize("image_size", [32, 64, 96])
def test_vgg16_output_shapes(registry: Any, width: float, image_size: int) -> None:
    model = build(registry, "vgg16", image_size, width=width)
    channels = round(512 * width)
    assert model.output_dim == channels * (image_size // 32) ** 2
    out = model(torch.randn(2, 3, image_size, image_size))
    assert out.shape == (2, model.output_dim)
    assert (out >= 0).all()  # features after ReLU and max-pool


def test_vgg16_width_rounding_and_channels(registry: Any) -> None:
    tiny = build(registry, "vgg16", 32, width=0.001)
    assert [m.out_channels for m in tiny.modules() if isinstance(m, nn.Conv2d)] == [1] * 13
    odd = build(registry, "vgg16", 32, width=0.3)
    firsts = [m.out_channels for m in odd.modules() if isinstance(m, nn.Conv2d)][::3]
    assert firsts == [19, 38, 77, 154, 154]
    gray = build(registry, "vgg16", 32, in_channels=1, width=0.125)
    assert gray(torch.randn(2, 1, 32, 32)).shape == (2, 64)


@pytest.mark.parametrize(
    ("image_size", "options", "message"),
    [
        (48, {}, "image_size must be a multiple of 32.*got 48"),
        (16, {}, "image_size"),
        (32, {"width": 0}, "'width'"),
        (32, {"batch_norm": "yes"}, "'batch_norm'"),
        (32, {"widht": 0.5}, r"has no option 'widht' \(did you mean 'width'\?\)"),
        (32, {"weights": 3}, "'weights' must be a file path"),
    ],
)
def test_vgg16_bad_options(registry: Any, image_size: int, options: dict, message: str) -> None:
    with pytest.raises(BiobenchError, match=rf"backbone 'vgg16'.*{message}"):
        build(registry, "vgg16", image_size, **options)


def test_vgg16_rejects_other_input_size(registry: Any) -> None:
    model = build(registry, "vgg16", 32, width=0.0625)
    with pytest.raises(BiobenchError, match="built for 32x32"):
        model(torch.zeros(1, 3, 64, 64))


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_vgg16_weights_round_trip(registry: Any, tmp_path: Path, suffix: str) -> None:
    torch.manual_seed(1)
    source = build(registry, "vgg16", 32, width=0.125, batch_norm=True)
    with torch.no_grad():  # non-default BatchNorm statistics must travel too
        for m in source.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
    path = tmp_path / f"vgg{suffix}"
    if suffix == ".safetensors":
        from safetensors.torch import save_file

        save_file(source.state_dict(), str(path))
    else:
        torch.save(source.state_dict(), path)
    torch.manual_seed(2)
    loaded = build(registry, "vgg16", 32, width=0.125, batch_norm=True, weights=str(path))
    x = torch.randn(3, 3, 32, 32)
    source.eval(), loaded.eval()
    torch.testing.assert_close(loaded(x), source(x), rtol=0, atol=0)


def test_vgg16_weights_from_full_checkpoints(registry: Any, tmp_path: Path) -> None:
    source = build(registry, "vgg16", 32, width=0.0625)
    features_only = {k.removeprefix("features."): v for k, v in source.state_dict().items()}
    full = {**source.state_dict(), "pre_logits.fc1.weight": torch.zeros(4, 32, 7, 7)}
    full["head.fc.weight"] = torch.zeros(10, 4)
    wrapped = {"state_dict": {f"module.{k}": v for k, v in full.items()}, "epoch": 3}
    for name, content in (("bare", features_only), ("full", full), ("wrapped", wrapped)):
        path = tmp_path / f"{name}.pth"
        torch.save(content, path)
        loaded = build(registry, "vgg16", 32, width=0.0625, weights=str(path))
        for a, b in zip(loaded.parameters(), source.parameters(), strict=True):
            assert torch.equal(a, b), name


def test_vgg16_weights_errors(registry: Any, tmp_path: Path) -> None:
    wider = tmp_path / "wider.pt"
    torch.save(build(registry, "vgg16", 32, width=0.125).state_dict(), wider)
    with pytest.raises(BiobenchError) as info:
        build(registry, "vgg16", 32, width=0.0625, weights=str(wider))
    message = str(info.value)
    assert str(wider) in message and "shape mismatches (26)" in message
    assert "features.0.weight (file (8, 3, 3, 3), model (4, 3, 3, 3))" in message

    extra = tmp_path / "extra.pt"
    state = build(registry, "vgg16", 32, width=0.0625).state_dict()
    state["backbone.stray"] = torch.zeros(1)
    del state["features.28.bias"]
    torch.save(state, extra)
    expected = r"missing keys \(1\): features.28.bias.*unexpected keys \(1\): backbone.stray"
    with pytest.raises(BiobenchError, match=expected):
        build(registry, "vgg16", 32, width=0.0625, weights=str(extra))

    missing = tmp_path / "nope.pt"
    with pytest.raises(BiobenchError, match=rf"weights file {missing} does not exist"):
        build(registry, "vgg16", 32, width=0.0625, weights=str(missing))
    garbage = tmp_path / "garbage.pt"
    garbage.write_text("not a checkpoint")
    with pytest.raises(BiobenchError, match=rf"cannot read weights file {garbage}"):
        build(registry, "vgg16", 32, width=0.0625, weights=str(garbage))
    no_tensors = tmp_path / "dict.pt"
    torch.save({"epoch": 3, "lr": 0.1}, no_tensors)
    with pytest.raises(BiobenchError, match="does not hold a state dict"):
        build(registry, "vgg16", 32, width=0.0625, weights=str(no_tensors))


# ---------------------------------------------------------------------------------------------
# timm:<name>
# ---------------------------------------------------------------------------------------------


def test_timm_prefix_registration(registry: Any) -> None:
    entry, extra = registry.get("timm:test_resnet")
    assert entry.prefix and extra == {"variant": "test_resnet"}
    assert "timm:<name>" in registry.names() and "vgg16" in registry.names()


@pytest.mark.parametrize(
    ("name", "image_size", "in_channels"),
    [("test_resnet", 32, 3), ("test_vit", 32, 3), ("test_convnext", 64, 1)],
)
def test_timm_feature_dim_discovery(
    registry: Any, name: str, image_size: int, in_channels: int
) -> None:
    model = build(registry, f"timm:{name}", image_size, in_channels)
    out = model(torch.randn(2, in_channels, image_size, image_size))
    assert out.shape == (2, model.output_dim)
    assert model.training  # the dry run in eval mode restored the mode
    out.sum().backward()  # trainable end to end


def test_timm_dim_comes_from_forward(registry: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A model whose num_features is wrong still gets its true width from the dry run."""
    import timm

    real_create = timm.create_model

    def create_with_extra_layer(*args: Any, **kwargs: Any) -> nn.Module:
        model = real_create(*args, **kwargs)
        width = model.eval()(torch.zeros(1, 3, 32, 32)).shape[1]
        wrapped = nn.Sequential(model, nn.Linear(width, 7))
        wrapped.num_features = 12345
        return wrapped

    monkeypatch.setattr(timm, "create_model", create_with_extra_layer)
    model = build(registry, "timm:test_resnet", 32)
    assert model.output_dim == 7


def test_timm_options(registry: Any) -> None:
    model = build(registry, "timm:test_vit", 32, drop_path_rate=0.1)
    assert model.output_dim > 0
    with pytest.raises(BiobenchError, match=r"timm:test_resnet.*rejected.*bogus"):
        build(registry, "timm:test_resnet", 32, bogus=1)
    with pytest.raises(BiobenchError, match="either 'pretrained' or 'weights'"):
        build(registry, "timm:test_resnet", 32, pretrained=True, weights="x.pt")
    with pytest.raises(BiobenchError, match="'hub_timeout'"):
        build(registry, "timm:test_resnet", 32, hub_timeout=0)


def test_timm_unknown_model(registry: Any) -> None:
    with pytest.raises(UnknownComponentError) as info:
        build(registry, "timm:test_resnt", 32)
    message = str(info.value)
    assert "no timm model 'test_resnt'; did you mean 'test_resnet'" in message
    assert "models available" in message and len(message) < 400


def test_timm_weights_round_trip(registry: Any, tmp_path: Path) -> None:
    import timm

    torch.manual_seed(3)
    classifier = timm.create_model("test_resnet", num_classes=10)  # full model, head included
    path = tmp_path / "resnet.pth"
    torch.save(classifier.state_dict(), path)
    loaded = build(registry, "timm:test_resnet", 32, weights=str(path))
    classifier.reset_classifier(0)
    x = torch.randn(2, 3, 32, 32)
    classifier.eval(), loaded.eval()
    torch.testing.assert_close(loaded(x), classifier(x), rtol=0, atol=0)

    saved_backbone = tmp_path / "backbone.pth"  # a TimmBackbone's own state dict
    torch.save(loaded.state_dict(), saved_backbone)
    again = build(registry, "timm:test_resnet", 32, weights=str(saved_backbone)).eval()
    torch.testing.assert_close(again(x), classifier(x), rtol=0, atol=0)

    other = tmp_path / "other.pth"
    torch.save(timm.create_model("test_convnext").state_dict(), other)
    with pytest.raises(BiobenchError, match=rf"timm:test_resnet.*{other}.*missing keys"):
        build(registry, "timm:test_resnet", 32, weights=str(other))


# ---------------------------------------------------------------------------------------------
# timm pretrained weights without network
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def empty_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty Hugging Face and torch hub cache, offline mode off."""
    from huggingface_hub import constants

    cache = tmp_path / "hf-cache"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch-home"))
    return cache


def test_pretrained_offline_mode_fails_fast(
    registry: Any, empty_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.monotonic()
    with pytest.raises(BiobenchError, match=r"timm:test_resnet.*not in the local cache.*offline"):
        build(registry, "timm:test_resnet", 32, pretrained=True)
    assert time.monotonic() - start < 3


def test_pretrained_hanging_hub_times_out(
    registry: Any, empty_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(4)  # accepts connections (the kernel does) but never answers
    try:
        port = server.getsockname()[1]
        monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
        start = time.monotonic()
        with pytest.raises(BiobenchError, match=r"127\.0\.0\.1.*not reachable.*within 0\.5 s"):
            build(registry, "timm:test_resnet", 32, pretrained=True, hub_timeout=0.5)
        assert time.monotonic() - start < 3
    finally:
        server.close()


def test_pretrained_refused_connection(
    registry: Any, empty_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there any more
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(BiobenchError, match=r"not reachable.*weights = "):
        build(registry, "timm:test_resnet", 32, pretrained=True, hub_timeout=2)


class _NotFound(http.server.BaseHTTPRequestHandler):
    def do_HEAD(self) -> None:  # noqa: N802 - http.server's naming
        self.send_response(404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    do_GET = do_HEAD  # noqa: N815

    def log_message(self, *args: Any) -> None:
        pass


def test_pretrained_download_failure_through_real_hub_client(
    registry: Any, empty_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A hub that answers 404: the real download path (timm -> huggingface_hub) fails in one
    line naming the source."""
    from huggingface_hub import constants

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _NotFound)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    endpoint = f"http://127.0.0.1:{server.server_address[1]}"
    # huggingface_hub builds download URLs from a template fixed at import time.
    monkeypatch.setattr(constants, "ENDPOINT", endpoint)
    monkeypatch.setattr(
        constants,
        "HUGGINGFACE_CO_URL_TEMPLATE",
        endpoint + "/{repo_id}/resolve/{revision}/{filename}",
    )
    try:
        start = time.monotonic()
        with pytest.raises(BiobenchError) as info:
            build(registry, "timm:test_resnet", 32, pretrained=True)
        assert time.monotonic() - start < 10
    finally:
        server.shutdown()
        server.server_close()
    message = str(info.value)
    assert message.startswith("backbone 'timm:test_resnet': loading pretrained weights from")
    assert endpoint in message and "failed" in message and "\n" not in message


def test_pretrained_uses_local_cache_offline(
    registry: Any, empty_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import timm
    from safetensors.torch import save_file

    torch.manual_seed(4)
    published = timm.create_model("test_resnet")  # stands in for the hub's weights
    cfg = timm.models.get_pretrained_cfg("test_resnet")
    repo = empty_hub / ("models--" + cfg.hf_hub_id.replace("/", "--"))
    commit = "0" * 40
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(commit)
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    save_file(published.state_dict(), str(snapshot / "model.safetensors"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    model = build(registry, "timm:test_resnet", 32, pretrained=True).eval()
    published.reset_classifier(0)
    x = torch.randn(2, 3, 32, 32)
    torch.testing.assert_close(model(x), published.eval()(x), rtol=0, atol=0)
