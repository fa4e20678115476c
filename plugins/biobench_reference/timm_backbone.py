"""Any timm model as a backbone: ``timm:<model name>`` (e.g. ``timm:resnet18``).

The model is created with ``num_classes=0`` so it returns pooled features, and the feature
width is found by a dry forward pass on a zero image of the protocol's size: some models'
``num_features`` does not match what ``forward`` returns (extra pre-logits layers, models whose
pooling is disabled), and only the forward pass is authoritative.

Pretrained weights never make a run hang.  With ``pretrained = true`` the weights are taken
from the local caches (Hugging Face hub cache, torch hub checkpoints) when present, without any
network access.  Otherwise the hub is probed with a short timeout first (``hub_timeout``
seconds, default 5); offline mode (``HF_HUB_OFFLINE=1``), an unreachable hub or a failing
download gives one line saying so and suggesting ``weights = "path"``.
"""

from __future__ import annotations

import os
import threading
import urllib.error
import urllib.request
from difflib import get_close_matches
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import torch
from torch import nn

from biobench.api import Backbone, BiobenchError, UnknownComponentError

from ._options import as_bool, as_float, as_int
from ._weights import apply_state_dict, read_state_dict

#: Options the factory consumes itself; every other option is passed to ``timm.create_model``.
OWN_OPTIONS = ("pretrained", "weights", "hub_timeout")
#: Seconds allowed for the reachability probe (DNS + connect + first response).
DEFAULT_HUB_TIMEOUT = 5.0


class UnknownTimmModelError(UnknownComponentError):
    """A ``timm:<name>`` that timm does not know; suggests close names without listing all."""

    def __init__(self, name: str, available: list[str]) -> None:
        self.kind, self.name, self.available = "timm model", name, available
        close = get_close_matches(name, available, n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        # Over a thousand names: a full listing would bury the suggestion.
        BiobenchError.__init__(
            self,
            f"no timm model '{name}'{hint} ({len(available)} models available; "
            f'list them with python -c "import timm; print(timm.list_models())")',
        )


class TimmBackbone(Backbone):
    """A timm model without its classifier: ``[B, C, H, W] -> [B, output_dim]``."""

    def __init__(self, model: nn.Module, name: str, image_size: int, in_channels: int) -> None:
        super().__init__()
        self.model = model
        self.name = name
        self.image_size = image_size
        self.output_dim = self._discover_output_dim(in_channels)

    @torch.no_grad()
    def _discover_output_dim(self, in_channels: int) -> int:
        # Eval mode: BatchNorm in train mode fails on a single sample with 1x1 maps, and the
        # dry run must not move running statistics.
        was_training = self.model.training
        self.model.eval()
        try:
            probe = torch.zeros(1, in_channels, self.image_size, self.image_size)
            try:
                out = self.model(probe)
            except Exception as exc:  # noqa: BLE001 - timm raises many kinds for bad sizes
                raise BiobenchError(
                    f"backbone 'timm:{self.name}' cannot process {self.image_size}x"
                    f"{self.image_size} images with {in_channels} channels: "
                    f"{type(exc).__name__}: {exc}"
                ) from exc
        finally:
            self.model.train(was_training)
        return int(out.flatten(1).shape[1])

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Pooled features, flattened to ``[B, output_dim]``."""
        return self.model(images).flatten(1)


def _offline_forced() -> bool:
    """True when the user asked for no hub traffic (``HF_HUB_OFFLINE`` and friends)."""
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(var, "").strip().lower() in {"1", "true", "yes", "on"}:
            return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def _hub_endpoint() -> str:
    """The Hugging Face endpoint in use (``HF_ENDPOINT`` as read by huggingface_hub)."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    return str(constants.ENDPOINT).rstrip("/")


def probe_url(url: str, timeout: float) -> str | None:
    """Return None if ``url`` answers any HTTP response within ``timeout`` s, else the reason.

    The request runs in a daemon thread joined with the timeout, because name resolution has
    no timeout of its own and can block for minutes in a sandbox without DNS.
    """
    outcome: list[str | None] = []

    def attempt() -> None:
        request = urllib.request.Request(url, method="HEAD")
        try:
            with urllib.request.urlopen(request, timeout=timeout):
                outcome.append(None)
        except urllib.error.HTTPError:
            outcome.append(None)  # the server answered: it is reachable
        except Exception as exc:  # noqa: BLE001 - any failure means unreachable
            reason = getattr(exc, "reason", exc)
            outcome.append(f"{type(exc).__name__}: {reason}")

    worker = threading.Thread(target=attempt, name="biobench-hub-probe", daemon=True)
    worker.start()
    worker.join(timeout)
    if not outcome:
        return f"no answer within {timeout:g} s"
    return outcome[0]


def _cached_pretrained_file(cfg: Any) -> str | None:
    """Path of already-downloaded weights for a timm pretrained config, if any."""
    hub_id = getattr(cfg, "hf_hub_id", None)
    if hub_id:
        try:
            from huggingface_hub import constants, try_to_load_from_cache
        except ImportError:
            pass
        else:
            repo, _, revision = hub_id.partition("@")
            names = [cfg.hf_hub_filename] if getattr(cfg, "hf_hub_filename", None) else []
            names += ["model.safetensors", "pytorch_model.bin"]
            for filename in names:
                found = try_to_load_from_cache(
                    repo, filename, cache_dir=constants.HF_HUB_CACHE, revision=revision or None
                )
                if isinstance(found, str):
                    return found
    url = getattr(cfg, "url", None)
    if url:
        from torch.hub import get_dir

        candidate = Path(get_dir()) / "checkpoints" / Path(urlsplit(url).path).name
        if candidate.is_file():
            return str(candidate)
    return None


def _pretrained_source(variant: str, timeout: float) -> tuple[dict[str, Any], str]:
    """Decide where pretrained weights come from without hanging.

    Returns the ``pretrained_cfg_overlay`` for ``timm.create_model`` (``{"file": path}`` for a
    cached copy, ``{}`` to let timm download) and a description of the source for messages.
    """
    import timm

    component = f"backbone 'timm:{variant}'"
    cfg = timm.models.get_pretrained_cfg(variant)
    hub_id = getattr(cfg, "hf_hub_id", None) if cfg is not None else None
    url = getattr(cfg, "url", None) if cfg is not None else None
    if not hub_id and not url:
        raise BiobenchError(f"{component}: timm has no pretrained weights for '{variant}'")
    cached = _cached_pretrained_file(cfg)
    if cached is not None:
        return {"file": cached}, cached
    if hub_id:
        endpoint = _hub_endpoint()
        where, probe = f"the Hugging Face hub ({endpoint}, repo {hub_id})", endpoint
    else:
        parts = urlsplit(url)
        where, probe = url, f"{parts.scheme}://{parts.netloc}"
    advice = (
        "download the weights on a connected machine (they are then cached) "
        'or pass backbone option weights = "path/to/file"'
    )
    if _offline_forced():
        raise BiobenchError(
            f"{component}: pretrained weights are not in the local cache and offline mode is "
            f"on (HF_HUB_OFFLINE); {advice}"
        )
    problem = probe_url(probe, timeout)
    if problem is not None:
        raise BiobenchError(
            f"{component}: pretrained weights are not in the local cache and {where} is not "
            f"reachable ({problem}); {advice}"
        )
    return {}, where


def build_timm_backbone(
    image_size: int, in_channels: int = 3, *, variant: str, **options: Any
) -> TimmBackbone:
    """Factory for ``timm:<variant>``: options ``pretrained``, ``weights``, ``hub_timeout``.

    Any other option is passed to ``timm.create_model`` (``drop_path_rate`` ...); an option the
    model does not accept is reported as a :class:`BiobenchError`.
    """
    import timm

    component = f"backbone 'timm:{variant}'"
    size = as_int(component, "image_size", image_size, low=1)
    channels = as_int(component, "in_channels", in_channels, low=1)
    if not timm.is_model(variant):
        raise UnknownTimmModelError(variant, timm.list_models())
    pretrained = as_bool(component, "pretrained", options.get("pretrained", False))
    weights = options.get("weights")
    timeout = options.get("hub_timeout", DEFAULT_HUB_TIMEOUT)
    timeout = as_float(component, "hub_timeout", timeout, low=0.0, low_open=True)
    if pretrained and weights is not None:
        raise BiobenchError(f"{component}: give either 'pretrained' or 'weights', not both")
    model_kwargs = {k: v for k, v in options.items() if k not in OWN_OPTIONS}
    cfg = timm.models.get_pretrained_cfg(variant)
    if cfg is not None and getattr(cfg, "fixed_input_size", False) and "img_size" not in options:
        # Vision transformers size their position embeddings at creation time.
        model_kwargs["img_size"] = size

    overlay: dict[str, Any] = {}
    source = ""
    if pretrained:
        overlay, source = _pretrained_source(variant, timeout)
    try:
        model = timm.create_model(
            variant,
            pretrained=pretrained,
            pretrained_cfg_overlay=overlay or None,
            num_classes=0,
            in_chans=channels,
            **model_kwargs,
        )
    except TypeError as exc:
        bad = ", ".join(sorted(model_kwargs)) or "(none)"
        raise BiobenchError(f"{component}: timm rejected the model options ({bad}): {exc}") from exc
    except (BiobenchError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - network and hub errors come in many types
        if not pretrained:
            raise
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise BiobenchError(
            f"{component}: loading pretrained weights from {source} failed: "
            f'{type(exc).__name__}: {message}; pass backbone option weights = "path/to/file" '
            f"to use a local copy"
        ) from exc

    if weights is not None:
        state = read_state_dict(weights, component)
        if state and all(k.startswith("model.") for k in state):
            state = {k[len("model.") :]: v for k, v in state.items()}  # a saved TimmBackbone
        # A checkpoint of the full classifier is fine: drop the head timm removed.
        head = getattr(cfg, "classifier", None) if cfg is not None else None
        heads = [head] if isinstance(head, str) else list(head or [])
        apply_state_dict(model, state, weights, component, ignore_prefixes=[f"{h}." for h in heads])
    return TimmBackbone(model, variant, size, channels)
