"""Loading backbone weights from a local file, with errors that name the file and the keys.

Both backbones take ``weights = "path"``: a ``.safetensors`` file or a PyTorch file read with
``torch.load(..., weights_only=True)`` (so a checkpoint can never run code).  Common wrappers
are unwrapped (``{"state_dict": ...}``, ``{"model": ...}``, DataParallel's ``module.`` prefix).
A file that does not fit the model is refused as a whole, listing missing, unexpected and
wrongly shaped keys: loading half a checkpoint silently would make a benchmark number lie.
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from torch import nn

from biobench.api import BiobenchError

#: Keys under which training scripts commonly nest the model's state dict.
_WRAPPER_KEYS = ("state_dict", "model", "model_state_dict", "module", "net")
#: How many offending keys a message lists before it only gives a count.
_SHOW = 6


def read_state_dict(path: object, component: str) -> dict[str, torch.Tensor]:
    """Read a state dict from ``path`` (safetensors or a ``weights_only`` torch file).

    :param path: the ``weights`` option as given in the protocol.
    :param component: how error messages name the component, e.g. ``"backbone 'vgg16'"``.
    :raises BiobenchError: the option is not a path, or the file is missing, unreadable or
        holds no tensors.
    """
    if not isinstance(path, str | Path) or not str(path):
        raise BiobenchError(f"{component}: option 'weights' must be a file path, got {path!r}")
    file = Path(path).expanduser()
    if not file.is_file():
        raise BiobenchError(f"{component}: weights file {file} does not exist")
    try:
        if file.suffix == ".safetensors":
            from safetensors.torch import load_file

            loaded: object = load_file(str(file), device="cpu")
        else:
            loaded = torch.load(file, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, pickle.UnpicklingError, EOFError) as exc:
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BiobenchError(f"{component}: cannot read weights file {file}: {first_line}") from exc
    state = _unwrap(loaded)
    if state is None:
        raise BiobenchError(
            f"{component}: weights file {file} does not hold a state dict "
            f"(a mapping of parameter names to tensors)"
        )
    return state


def _unwrap(loaded: object) -> dict[str, torch.Tensor] | None:
    """The tensor mapping inside ``loaded``, or None when there is none."""
    for _ in range(3):  # checkpoints nest at most a couple of levels in practice
        if not isinstance(loaded, Mapping):
            return None
        if loaded and all(isinstance(v, torch.Tensor) for v in loaded.values()):
            break
        inner = next((loaded[k] for k in _WRAPPER_KEYS if isinstance(loaded.get(k), Mapping)), None)
        if inner is None:
            return None
        loaded = inner
    else:
        return None
    state = {str(k): v for k, v in loaded.items()}
    if state and all(k.startswith("module.") for k in state):
        state = {k[len("module.") :]: v for k, v in state.items()}
    return state


def _listing(label: str, items: list[str]) -> str:
    shown = ", ".join(items[:_SHOW])
    more = f" and {len(items) - _SHOW} more" if len(items) > _SHOW else ""
    return f"{label} ({len(items)}): {shown}{more}"


def apply_state_dict(
    module: nn.Module,
    state: Mapping[str, torch.Tensor],
    path: str | Path,
    component: str,
    ignore_prefixes: Iterable[str] = (),
) -> None:
    """Load ``state`` into ``module`` exactly, or raise naming the bad keys.

    :param ignore_prefixes: key prefixes in the file that are not part of ``module`` and are
        expected to be dropped (a classifier head when loading a full ImageNet checkpoint into
        a feature extractor).
    """
    ignored = tuple(ignore_prefixes)
    own = module.state_dict()
    # BatchNorm's step counter is absent from older checkpoints and does not affect outputs.
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in state if k not in own and not (ignored and k.startswith(ignored))]
    mismatched = [
        f"{k} (file {tuple(state[k].shape)}, model {tuple(own[k].shape)})"
        for k in own
        if k in state and tuple(state[k].shape) != tuple(own[k].shape)
    ]
    if missing or unexpected or mismatched:
        problems = []
        if missing:
            problems.append(_listing("missing keys", missing))
        if unexpected:
            problems.append(_listing("unexpected keys", unexpected))
        if mismatched:
            problems.append(_listing("shape mismatches", mismatched))
        raise BiobenchError(
            f"{component}: weights file {path} does not match the model; " + "; ".join(problems)
        )
    module.load_state_dict({k: v for k, v in state.items() if k in own}, strict=False)
