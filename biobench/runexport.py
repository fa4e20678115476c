"""Export the model of a run record as an ONNX or TorchScript embedder (``biobench export``).

The record holds the run's resolved configuration and the sha256 of the weights the run saved
(``artifacts.model``: ``seed-<N>-model.safetensors`` beside the record).  The model is rebuilt
from that configuration with the record's attribute and identity counts (the data is not
loaded), the weights are checked against the recorded sha256 and loaded strictly (every tensor,
same names and shapes), and the embedding the protocol evaluated
(``run.evaluation.embedding``) is written by :func:`biobench.export.export_embedder` with the
harness's preprocessing at the run's image size.

The exported file is then read back through the ``onnx:`` / ``torchscript:`` backbone that will
evaluate it, and its embeddings of a fixed probe batch are compared with the rebuilt model's:
the largest absolute difference, relative to the largest embedding value (at least 1), must not
exceed :data:`EXPORT_TOLERANCE`, or the files are removed and the export is refused.

A record is untrusted input: a model file it names (an ``onnx:`` / ``torchscript:`` backbone)
is loaded only when its sha256 is the one the record holds, and a TorchScript file only with
``trust_model_code`` (``--trust-model-code``; :mod:`biobench.modelfiles`).  The exported file
read back is the one just written (checked by its sha256).
"""

from __future__ import annotations

import hashlib
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from biobench.errors import BiobenchError
from biobench.model import plain_names
from biobench.modelfiles import expect_model_files, record_model_files
from biobench.modelfiles import trust_model_code as trust
from biobench.paths import relative_inside
from biobench.records import RunRecord

#: Largest relative difference between the exported file's embeddings and the model's.
EXPORT_TOLERANCE = 1e-5
#: Probe images compared after export (uint8, drawn with numpy seed 0).
PROBE_IMAGES = 4


@dataclass
class ExportResult:
    """What :func:`export_record` wrote and how closely the file matches the model."""

    files: list[Path]
    embedding: str
    dim: int
    max_difference: float


#: The tables of a record a model is rebuilt from (:meth:`RunRecord.read`'s ``require``).
MODEL_TABLES = ("run.model", "data")


def weights_file(record_path: Path, record: RunRecord) -> tuple[Path, str]:
    """The record's weights file and recorded sha256; one line when it cannot be used."""
    model = record.weights
    if model is None or not model.get("path") or not model.get("sha256"):
        raise BiobenchError(
            f"{record_path}: the record names no saved weights (artifacts.model); runs "
            f"recorded before biobench saved trained weights must be run again to export them"
        )
    if model.get("format") != "safetensors":
        raise BiobenchError(
            f"{record_path}: weights format {model.get('format')!r} is not safetensors"
        )
    path = relative_inside(Path(record_path).parent, str(model["path"]), f"{record_path}: weights")
    if not path.is_file():
        raise BiobenchError(f"{record_path}: the weights file {path} is missing")
    return path, model["sha256"]


def load_weights(path: Path, expected_sha256: str) -> dict[str, torch.Tensor]:
    """The tensors of ``path`` after checking its sha256 against the record's."""
    from safetensors.torch import load

    data = path.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != expected_sha256:
        raise BiobenchError(
            f"{path}: sha256 {digest[:12]}... differs from the record's "
            f"{expected_sha256[:12]}...: these are not the weights the run evaluated"
        )
    try:
        return load(data)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one message
        raise BiobenchError(f"{path}: not a safetensors file ({exc})") from exc


def rebuild_model(pm: Any, record: RunRecord) -> Any:
    """The record's :class:`~biobench.model.ComposedModel` with fresh parameters (on the CPU).

    Head widths come from the record: ``data.attributes`` (the attribute head's outputs, in
    order), ``data.fusion_attributes`` (their positions give the fusion index) and
    ``data.n_identities``.
    """
    from biobench.model import build_model
    from biobench.protocol import RunSpec

    run, data = record.run, record.data_table
    try:
        attributes = list(data["attributes"])
        fusion_index = [attributes.index(a) for a in data["fusion_attributes"]]
        identities = int(data["n_identities"])
    except (KeyError, ValueError, TypeError) as exc:
        raise BiobenchError(f"the record's data table lacks what the model needs ({exc})") from exc
    spec = RunSpec.from_config(run.get("label", "export"), run, seeds=[int(run.get("seed", 0))])
    built = build_model(
        pm,
        spec,
        num_attributes=len(attributes),
        num_identities=identities,
        fusion_index=fusion_index,
    )
    return built.model


def export_record(
    record_path: Path,
    fmt: str,
    out: Path,
    pm: Any,
    *,
    tolerance: float = EXPORT_TOLERANCE,
    trust_model_code: bool = False,
) -> ExportResult:
    """Export the run of ``record_path`` as ``fmt`` to ``out`` (plus ``<out>.json``); checked.

    :param trust_model_code: load a TorchScript model file the record names (with its
        recorded sha256); never taken from the record.
    """
    from biobench.export import FORMATS, export_embedder, harness_preprocessing

    if fmt not in FORMATS:
        raise BiobenchError(f"--format must be one of {list(FORMATS)}, got {fmt!r}")
    if fmt == "onnx" and importlib.util.find_spec("onnxruntime") is None:
        # Checked first: the read-back below needs it, and nothing is written without it.
        raise BiobenchError(
            "biobench export --format onnx needs onnxruntime to check the exported file; "
            "install the onnx extra: pip install 'biobench[onnx]'"
        )
    record = RunRecord.read(record_path, require=MODEL_TABLES)
    weights, sha256 = weights_file(record_path, record)
    # Records written before weights were saved under plain names hold "_orig_mod." names when
    # the backbone was compiled (--compile); the rebuilt model is not compiled.
    tensors = plain_names(load_weights(weights, sha256))
    # The model files the record names load only with their recorded sha256 (and code
    # formats only with consent), before anything of the model runs.
    with (
        trust(trust_model_code),
        expect_model_files(record_model_files(record.data), str(record_path)),
    ):
        model = rebuild_model(pm, record)
    try:
        model.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        raise BiobenchError(
            f"{weights}: the tensors do not fit the model the record describes "
            f"({' '.join(first[:2])[:300]})"
        ) from exc
    model.eval()
    run = record.run
    embedding = run["evaluation"]["embedding"]
    image_size = int(run["model"]["image_size"])
    preprocessing = harness_preprocessing(image_size)
    metadata = {
        "record": str(record_path),
        "protocol": record.protocol.get("name"),
        "protocol_version": record.protocol.get("version"),
        "label": run.get("label"),
        "seed": run.get("seed"),
        "config_hash": run.get("config_hash"),
        "weights_sha256": sha256,
        # The image preprocessing the run's pixels went through (face box, alignment): the
        # exported model expects faces prepared the same way.
        "image_preprocessing": record.data_table.get("preprocessing"),
        "data_fingerprint": record.data_table.get("fingerprint"),
    }
    files = export_embedder(model, fmt, out, preprocessing, embedding=embedding, metadata=metadata)
    try:
        difference, dim = _compare(pm, model, fmt, Path(out), embedding, image_size)
        if not difference <= tolerance:
            raise BiobenchError(
                f"{out}: the exported {fmt} embeddings differ from the model's by {difference:.3g} "
                f"(relative), above {tolerance:g}; the export was removed"
            )
    except BaseException:
        for f in files:
            f.unlink(missing_ok=True)
        raise
    return ExportResult(files=files, embedding=embedding, dim=dim, max_difference=difference)


def _compare(
    pm: Any, model: Any, fmt: str, out: Path, embedding: str, image_size: int
) -> tuple[float, int]:
    """Relative max difference between the file's embeddings (through its backbone) and the
    model's on :data:`PROBE_IMAGES` fixed random images; and the embedding width."""
    from biobench.export import EmbeddingModule, harness_preprocessing

    rng = np.random.default_rng(0)
    images = torch.from_numpy(
        rng.integers(0, 256, size=(PROBE_IMAGES, image_size, image_size, 3), dtype=np.uint8)
    )
    # The file just written is read back: its own sha256 is the expected one.
    written = {str(out): hashlib.sha256(Path(out).read_bytes()).hexdigest()}
    with trust(True), expect_model_files(written, "the export"):
        backbone, _ = pm.build("backbone", f"{fmt}:{out}", {}, image_size=image_size, in_channels=3)
    with torch.no_grad():
        reference = EmbeddingModule(model, embedding)(
            harness_preprocessing(image_size).to_input(images)
        ).float()
        exported = backbone(images).float()
    if exported.shape != reference.shape:
        raise BiobenchError(
            f"{out}: the exported model returns {list(exported.shape)}, the model "
            f"{list(reference.shape)}"
        )
    scale = max(1.0, float(reference.abs().max()))
    return float((exported - reference).abs().max()) / scale, int(reference.shape[1])
