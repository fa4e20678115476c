"""Model files are untrusted input: consent for formats that run code, a record's sha256.

Some model formats are **data**: an ONNX graph or a safetensors file is read by a runtime that
executes only its own operators.  Others are **programs**: loading a TorchScript archive and
calling its ``forward`` runs whatever code the file holds (it can, for instance, map a file with
``torch.from_file(path, shared=True)`` and overwrite it).  biobench loads a code format only
after an explicit opt-in, ``--trust-model-code`` (:func:`trust_model_code`), which nothing read
from a file (a protocol, a run record) can give.

``biobench reproduce`` and ``biobench export`` load the model files a record names only when
their sha256 is the one the record holds (:func:`expect_model_files`): a component reads a model
file through :func:`read_model_file`, which checks both rules on the bytes it then loads.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from biobench.errors import BiobenchError

#: Formats whose files are data: loading and running them executes no code of the file's.
DATA_FORMATS = ("onnx", "safetensors")
#: Formats whose files are programs: loading or running one executes the file's code.
CODE_FORMATS = ("torchscript",)
#: The command-line flag that allows code formats.
TRUST_FLAG = "--trust-model-code"

_trusted = False
#: (path -> sha256, who names them) while a record's model files are loaded; else None.
_expected: tuple[dict[str, str], str] | None = None


def set_model_code_trust(allowed: bool) -> None:
    """Allow (or forbid) loading model files of a code format in this process."""
    global _trusted
    _trusted = bool(allowed)


def model_code_trusted() -> bool:
    return _trusted


@contextmanager
def trust_model_code(allowed: bool = True) -> Iterator[None]:
    """:func:`set_model_code_trust` for the duration of a ``with`` block."""
    before = _trusted
    set_model_code_trust(allowed)
    try:
        yield
    finally:
        set_model_code_trust(before)


def consent_error(component: str, fmt: str, path: Path | str) -> BiobenchError:
    """The one line saying why a code-format file is not loaded, and how to allow it."""
    return BiobenchError(
        f"{component}: a {fmt} model file is a program (loading and running it executes the "
        f"file's code), so {path} is not loaded; pass {TRUST_FLAG} if you trust that file "
        f"(data formats: {', '.join(DATA_FORMATS)})"
    )


def _key(path: Path | str) -> str:
    return str(Path(path).expanduser().resolve())


@contextmanager
def expect_model_files(files: Mapping[str, str], source: str) -> Iterator[None]:
    """While the block runs, a model file loads only if ``files`` maps it to its sha256.

    :param files: path -> sha256, as :func:`record_model_files` reads them from a record.
    :param source: who names the files (the record's path), for the error line.
    """
    global _expected
    before = _expected
    _expected = ({_key(p): str(s) for p, s in files.items()}, source)
    try:
        yield
    finally:
        _expected = before


def read_model_file(component: str, path: Path, fmt: str) -> tuple[bytes, str]:
    """The bytes of a model file and their sha256, once it may be loaded.

    A code format (:data:`CODE_FORMATS`) needs :func:`model_code_trusted`; while
    :func:`expect_model_files` is active the file must be one it names, with that sha256.  The
    caller loads the returned bytes, so the file checked is the file loaded.
    """
    if fmt in CODE_FORMATS and not _trusted:
        raise consent_error(component, fmt, path)
    expected = _expected
    if expected is not None and _key(path) not in expected[0]:
        raise BiobenchError(
            f"{component}: {expected[1]} records no sha256 for the model file {path}; a model "
            f"file named by a record is loaded only when its sha256 is the recorded one"
        )
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise BiobenchError(f"{component}: cannot read {path}: {exc.strerror}") from exc
    digest = hashlib.sha256(data).hexdigest()
    if expected is not None and expected[0][_key(path)] != digest:
        raise BiobenchError(
            f"{component}: {path} has sha256 {digest[:12]}..., {expected[1]} recorded "
            f"{expected[0][_key(path)][:12]}...: not the model file the run used; not loaded"
        )
    return data, digest


def record_model_files(record: Mapping[str, Any]) -> dict[str, str]:
    """path -> sha256 of every model file a record's components describe (a component's
    provenance with ``file`` and ``sha256``, as the file-based backbones record them)."""
    found: dict[str, str] = {}

    def walk(value: Any) -> None:
        if isinstance(value, Mapping):
            file, digest = value.get("file"), value.get("sha256")
            if isinstance(file, str) and isinstance(digest, str) and file:
                found[file] = digest
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    walk(record.get("components") or {})
    return found
