"""Pretrained face embedders from a local file: ``onnx:<path>`` and ``torchscript:<path>``.

The backbone loads a model file and evaluates it frozen (``trainable = False``): the harness
then measures nearest-neighbour identification and verification on its embeddings, as for
``dlib_resnet``.  It takes the raw uint8 images (``raw_input = True``) and applies the
preprocessing the model was trained with, declared as options, or read from the sidecar
``<path>.json`` that :func:`biobench.export.export_embedder` writes (then options may repeat
the sidecar's values but not contradict them: a model fed other inputs than it was trained on
often still runs, and gives wrong numbers silently):

- ``input_size``: the side the model takes (default: the sidecar's, else the protocol's
  ``model.image_size``); the protocol's images must have that size, so that the dataset's own
  resize is the only resampling (set ``model.image_size`` to it);
- ``channel_order`` ``"RGB"`` / ``"BGR"``, ``mean`` and ``std`` in pixel units (a number or three),
  ``layout`` ``"NCHW"`` / ``"NHWC"``;
- ``normalize``: L2-normalise the embedding; ``flip``: add the embedding of the mirrored image
  first (InsightFace's evaluation);
- ``output`` (ONNX): the output to read when the graph has several (default: the first).

For instance InsightFace's ArcFace ONNX models: ``input_size = 112, channel_order = "BGR",
mean = 127.5, std = 127.5, normalize = true, flip = true`` on 5-point aligned faces.

The model always runs in float32 with autocast off, so an exported model gives the numbers of
the model it came from.  ONNX models run on onnxruntime's CPU provider (the ``onnx`` extra:
``pip install 'biobench[onnx]'``), with as many threads as torch uses.  The record gets the
file's sha256, its size and the effective preprocessing (:meth:`FileEmbedder.provenance`).

A TorchScript file is a program (loading and running it executes the file's code): it is loaded
only with ``--trust-model-code``; an ONNX file is data (:mod:`biobench.modelfiles`).  Without
consent, the archive and the declared preprocessing are still checked (``--dry-run``).  The
file is read once: the bytes whose sha256 is recorded are the bytes loaded.
"""

from __future__ import annotations

import importlib
import importlib.metadata as md
import io
import warnings
import zipfile
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from biobench.api import (
    Backbone,
    BiobenchError,
    EmbedderPreprocessing,
    read_model_file,
    read_sidecar,
    reject_unknown,
)

ONNX_HINT = "install the onnx extra: pip install 'biobench[onnx]' (or: pip install onnxruntime)"
#: Options that set the preprocessing (the rest: ``output``).
PREPROCESSING_OPTIONS = (
    "input_size",
    "channel_order",
    "mean",
    "std",
    "layout",
    "normalize",
    "flip",
)


def import_onnxruntime(component: str) -> ModuleType:
    """Import onnxruntime, or raise one line naming the extra to install."""
    try:
        return importlib.import_module("onnxruntime")
    except ImportError as exc:
        raise BiobenchError(f"{component} needs onnxruntime ({exc}); {ONNX_HINT}") from exc


class FileEmbedder(Backbone):
    """A frozen embedder read from a model file (see the module docstring).

    Subclasses implement :meth:`_load` (open the file, return the static input shape if the
    file declares one) and :meth:`_run` (float32 input -> ``[B, D]`` embeddings).
    """

    trainable = False
    raw_input = True
    kind = ""

    def __init__(self, path: str | Path, image_size: int, options: dict[str, Any]) -> None:
        super().__init__()
        self.component = f"backbone '{self.kind}:{path}'"
        self.path = Path(path).expanduser()
        if not self.path.is_file():
            raise BiobenchError(f"{self.component}: model file {self.path} not found")
        self.image_size = int(image_size)
        self.sidecar = read_sidecar(self.path)
        self.preprocessing = self._preprocessing(options)
        if self.preprocessing.input_size != self.image_size:
            raise BiobenchError(
                f"{self.component}: the model takes {self.preprocessing.input_size}x"
                f"{self.preprocessing.input_size} images (option 'input_size') but the protocol "
                f"gives {self.image_size}x{self.image_size}; set model.image_size = "
                f"{self.preprocessing.input_size}"
            )
        # What can be checked without running the file comes first (a dry run without consent
        # for a code format stops at read_model_file, having checked the file and its shape).
        self._check_file()
        data, self.sha256 = read_model_file(self.component, self.path, self.kind)
        shape = self._load(data)
        self._check_static_shape(shape)
        # The width comes from a dry run: only the forward pass is authoritative.
        probe = torch.zeros(1, self.image_size, self.image_size, 3, dtype=torch.uint8)
        try:
            out = self._embed(probe)
        except BiobenchError:
            raise
        except Exception as exc:  # noqa: BLE001 - runtimes raise many kinds for bad inputs
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise BiobenchError(
                f"{self.component}: the model fails on a {self._input_shape(1)} float32 input "
                f"(check input_size, layout): {type(exc).__name__}: {message}"
            ) from exc
        if out.ndim != 2:
            raise BiobenchError(
                f"{self.component}: the model returns shape {list(out.shape)}, expected "
                "[batch, embedding]"
            )
        self.output_dim = int(out.shape[1])

    # -- options --------------------------------------------------------------------------------

    def _preprocessing(self, options: dict[str, Any]) -> EmbedderPreprocessing:
        given = {k: v for k, v in options.items() if k in PREPROCESSING_OPTIONS}
        # The options are checked as this backbone's (one wording), then compared as values.
        checked = EmbedderPreprocessing.from_mapping(
            {"input_size": self.image_size, **given}, component=self.component
        )
        if self.sidecar is None:
            return checked
        given = {k: getattr(checked, k) for k in given}
        sidecar = f"{self.path.name}.json"
        declared = EmbedderPreprocessing.from_mapping(
            self.sidecar.get("preprocessing", {}),
            source=f"{self.component}: sidecar {sidecar}",
            component=f"{self.component} (sidecar {sidecar})",
        )
        # The sidecar says what the model was trained on: an option may repeat it, never
        # contradict it (a model evaluated on other inputs still runs, silently wrong).
        merged = EmbedderPreprocessing.from_mapping({**declared.as_dict(), **given})
        clashes = [
            f"{k} = {getattr(merged, k)!r} (sidecar: {getattr(declared, k)!r})"
            for k in given
            if getattr(merged, k) != getattr(declared, k)
        ]
        if clashes:
            raise BiobenchError(
                f"{self.component}: option(s) contradict the model's sidecar "
                f"{self.path.name}.json: {'; '.join(clashes)}"
            )
        return declared

    def _input_shape(self, batch: int) -> list[int]:
        s = self.preprocessing.input_size
        return [batch, 3, s, s] if self.preprocessing.layout == "NCHW" else [batch, s, s, 3]

    def _check_static_shape(self, shape: list[Any] | None) -> None:
        """Compare a declared input shape (None or strings: dynamic) with the preprocessing."""
        if shape is None:
            return
        expected = self._input_shape(1)
        if len(shape) != 4:
            raise BiobenchError(
                f"{self.component}: the model's input has shape {shape}, expected 4 dimensions "
                f"{expected} (layout {self.preprocessing.layout})"
            )
        for axis in (1, 2, 3):
            if isinstance(shape[axis], int) and shape[axis] != expected[axis]:
                raise BiobenchError(
                    f"{self.component}: the model's input is {shape} but the preprocessing "
                    f"gives {expected} (options 'input_size' = {self.preprocessing.input_size}, "
                    f"'layout' = {self.preprocessing.layout!r})"
                )

    # -- running --------------------------------------------------------------------------------

    def _check_file(self) -> None:
        """Checks of the file that run none of its code (the format's container)."""

    def _load(self, data: bytes) -> list[Any] | None:  # pragma: no cover - abstract
        """Load the model from ``data`` (the file's bytes, checked by ``read_model_file``)."""
        raise NotImplementedError

    def _run(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def _embed(self, images: torch.Tensor) -> torch.Tensor:
        pre = self.preprocessing
        x = pre.to_input(images)
        embedding = self._run(x).float().flatten(1) if x.shape[0] else None
        if embedding is None:
            return torch.zeros(0, getattr(self, "output_dim", 0), device=images.device)
        if pre.flip:
            embedding = embedding + self._run(pre.flip_input(x)).float().flatten(1)
        if pre.normalize:
            embedding = torch.nn.functional.normalize(embedding, dim=1)
        return embedding

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 ``[B, S, S, 3]`` RGB -> float32 ``[B, output_dim]``."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[-1] != 3:
            raise BiobenchError(
                f"{self.component} takes raw uint8 RGB images [B, H, W, 3] (raw_input); "
                f"got {images.dtype} {list(images.shape)}"
            )
        with torch.autocast(images.device.type, enabled=False):
            return self._embed(images)

    def provenance(self) -> dict[str, Any]:
        """The file (name, sha256, bytes), the effective preprocessing, the runtime version."""
        return {
            "file": str(self.path),
            "sha256": self.sha256,
            "bytes": self.path.stat().st_size,
            "preprocessing": self.preprocessing.as_dict(),
            "sidecar": self.sidecar is not None,
            "embedding": (self.sidecar or {}).get("embedding"),
            **self._runtime(),
        }

    def _runtime(self) -> dict[str, Any]:
        return {}

    def extra_repr(self) -> str:
        return f"path={str(self.path)!r}, output_dim={getattr(self, 'output_dim', None)}"


class OnnxEmbedder(FileEmbedder):
    """``onnx:<path>``: the model runs in onnxruntime (CPU provider)."""

    kind = "onnx"

    def __init__(
        self, path: str | Path, image_size: int, options: dict[str, Any], output: str | None
    ) -> None:
        self.output_name = output
        super().__init__(path, image_size, options)

    def _load(self, data: bytes) -> list[Any] | None:
        ort = import_onnxruntime(self.component)
        self.ort = ort
        session_options = ort.SessionOptions()
        session_options.intra_op_num_threads = torch.get_num_threads()
        session_options.log_severity_level = 3  # errors only: no warnings on stderr
        try:
            session = ort.InferenceSession(
                data, session_options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own exception types
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise BiobenchError(
                f"{self.component}: {self.path} is not a model onnxruntime can load "
                f"({type(exc).__name__}: {message[:200]})"
            ) from exc
        inputs = session.get_inputs()
        if len(inputs) != 1:
            names = [i.name for i in inputs]
            raise BiobenchError(f"{self.component}: the model has {len(inputs)} inputs {names}")
        if inputs[0].type != "tensor(float)":
            raise BiobenchError(
                f"{self.component}: the model's input is {inputs[0].type}, expected tensor(float)"
            )
        outputs = [o.name for o in session.get_outputs()]
        if self.output_name is None:
            self.output_name = outputs[0]
        elif self.output_name not in outputs:
            raise BiobenchError(
                f"{self.component}: option 'output' = {self.output_name!r} is not an output of "
                f"the model; outputs: {outputs}"
            )
        self.session, self.input_name = session, inputs[0].name
        return [d if isinstance(d, int) else str(d) for d in inputs[0].shape]

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        array = x.detach().cpu().numpy().astype(np.float32, copy=False)
        (out,) = self.session.run([self.output_name], {self.input_name: array})
        return torch.from_numpy(np.asarray(out, dtype=np.float32)).to(x.device)

    def _runtime(self) -> dict[str, Any]:
        return {"runtime": "onnxruntime", "runtime_version": md.version("onnxruntime")}


class TorchScriptEmbedder(FileEmbedder):
    """``torchscript:<path>``: the model runs in torch (on the run's device)."""

    kind = "torchscript"

    def _check_file(self) -> None:
        # A TorchScript file is a zip archive holding the pickled module and its code.
        try:
            with zipfile.ZipFile(self.path) as archive:
                names = archive.namelist()
        except (zipfile.BadZipFile, OSError) as exc:
            raise BiobenchError(
                f"{self.component}: {self.path} is not a TorchScript model (not a zip archive: "
                f"{exc})"
            ) from exc
        if not any(n.endswith("/data.pkl") for n in names) or not any("/code/" in n for n in names):
            raise BiobenchError(
                f"{self.component}: {self.path} is not a TorchScript model (no data.pkl and "
                "code/ in the archive)"
            )

    def _load(self, data: bytes) -> list[Any] | None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # torch.jit's deprecation notice
                self.model = torch.jit.load(io.BytesIO(data), map_location="cpu")
        except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError and others
            message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            raise BiobenchError(
                f"{self.component}: {self.path} is not a TorchScript model "
                f"({type(exc).__name__}: {message[:200]})"
            ) from exc
        self.model.eval()
        for parameter in self.model.parameters():
            parameter.requires_grad_(False)
        return None  # TorchScript does not declare input shapes; the dry run checks them

    def _run(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.model(x)

    def _runtime(self) -> dict[str, Any]:
        return {"runtime": "torch", "runtime_version": torch.__version__}

    def train(self, mode: bool = True) -> TorchScriptEmbedder:
        # Frozen: the scripted model stays in evaluation mode (BatchNorm, dropout).
        super().train(mode)
        self.model.eval()
        return self


def _options(component: str, options: dict[str, Any], extra: tuple[str, ...]) -> None:
    reject_unknown(component, options, [*PREPROCESSING_OPTIONS, *extra])


def build_onnx(
    image_size: int,
    in_channels: int = 3,
    *,
    variant: str,
    output: str | None = None,
    **options: Any,
) -> nn.Module:
    """Factory for ``onnx:<path>``: options as in the module docstring, plus ``output``."""
    _channels(f"backbone 'onnx:{variant}'", in_channels)
    _options(f"backbone 'onnx:{variant}'", options, ("output",))
    return OnnxEmbedder(variant, image_size, options, output)


def build_torchscript(
    image_size: int, in_channels: int = 3, *, variant: str, **options: Any
) -> nn.Module:
    """Factory for ``torchscript:<path>``: options as in the module docstring."""
    _channels(f"backbone 'torchscript:{variant}'", in_channels)
    _options(f"backbone 'torchscript:{variant}'", options, ())
    return TorchScriptEmbedder(variant, image_size, options)


def _channels(component: str, in_channels: int) -> None:
    if in_channels != 3:
        raise BiobenchError(f"{component} embeds RGB images (in_channels=3), got {in_channels}")
