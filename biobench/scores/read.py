"""Read a score file (Bob 4-/5-column or biobench CSV) into a columnar :class:`ScoreSet`.

The layouts are those of :mod:`biobench.scores.formats`.  Large files are read in chunks by
pandas' C parser into integer codes; a file the fast reader cannot parse is read again line by
line so that the error names the file and the first malformed line.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import numpy as np

from biobench.errors import BiobenchError, DataError
from biobench.scores.formats import BOB_COLUMNS, KINDS, decoded
from biobench.scores.scoreset import ScoreSet, score_set_from_lists, vocabulary_codes

#: Rows (lines) read per chunk by the columnar reader.
CHUNK_ROWS = 500_000


def _head(path: Path) -> tuple[dict[str, str], int, str | None]:
    """``(metadata, number of leading comment/blank lines, first content line)``."""
    metadata: dict[str, str] = {}
    skipped = 0
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            for line in handle:
                stripped = line.strip()
                if stripped.startswith("#") or not stripped:
                    key, sep, value = stripped[1:].partition(":")
                    if stripped and sep:
                        metadata[key.strip()] = value.strip()
                    skipped += 1
                    continue
                return metadata, skipped, line.rstrip("\r\n")
    except OSError as exc:
        raise BiobenchError(f"cannot read score file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not a UTF-8 text score file") from exc
    return metadata, skipped, None


def read_scores(path: Path) -> ScoreSet:
    """Read a score file: Bob's 4- or 5-column format or biobench's CSV format.

    The format is recognised from the content: a first non-comment line starting with
    ``claimed_id,`` or ``test_label,`` is CSV, 5 whitespace-separated fields are Bob's 5-column
    format, anything else is read as Bob's 4 columns; a first line with commas that is neither
    (a CSV with another header) is an error naming the header expected.  Large files are read
    in chunks by pandas' C parser into integer codes.

    :raises DataError: naming the file and line when a line is malformed or a score is
        infinite.
    :raises BiobenchError: when the file cannot be read.
    """
    path = Path(path)
    metadata, skipped, first = _head(path)
    if first is None:
        raise DataError(f"{path}: the score file holds no trials")
    compact = first.replace(" ", "")
    if compact.startswith("claimed_id,") or compact.startswith("test_label,"):
        scores = _read_csv(path, metadata, skipped)
    else:
        n_fields = len(first.split())
        if "," in first and n_fields not in (4, 5):
            raise DataError(
                f"{path}:{skipped + 1}: a CSV score file's header must start with 'claimed_id,' "
                "(claimed_id,real_id,test_label,score: comparisons) or 'test_label,' "
                f"(test_label,attribute,truth,score: attributes); got {first.strip()!r}"
            )
        fmt = "bob5" if n_fields == 5 else "bob4"
        scores = _read_bob(path, fmt)
        scores.metadata = metadata
        scores.kind = metadata.get("kind") if metadata.get("kind") in KINDS else None
        if fmt == "bob5":
            scores.rows = "item"
    _check_finite(scores)
    return scores


class _Malformed(Exception):
    """The fast reader met something it cannot read: the slow reader names the line."""


@dataclass
class _ChunkedCodes:
    """A group of string columns read in chunks: codes into the chunks' uniques, concatenated.

    Each chunk's column is factorised (hashing, no sort) into codes and the chunk's uniques.
    :meth:`merge` factorises the uniques of all chunks and columns of the group (such as
    ``claimed_id`` and ``real_id``, which share one vocabulary) once more, in reading order,
    which gives the group's vocabulary in first-seen order and maps every chunk's codes to it.
    Memory holds codes, not one string per row, and no Python loop runs per distinct string.
    """

    columns: Sequence[str]
    uniques: list[np.ndarray] = field(default_factory=list)
    parts: dict[str, list[np.ndarray]] = field(default_factory=dict)
    n_uniques: int = 0

    def add(self, column: str, values: np.ndarray) -> None:
        import pandas as pd

        local, chunk_uniques = pd.factorize(values)
        if len(local) and local.min() < 0:
            raise _Malformed(column)  # a missing field
        # Codes into the group's uniques of all chunks so far, concatenated.
        self.parts.setdefault(column, []).append((local + self.n_uniques).astype(np.int32))
        self.uniques.append(chunk_uniques)
        self.n_uniques += len(chunk_uniques)

    def merge(self) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """``(vocabulary, int32 codes by column)``; the chunks' codes are released."""
        import pandas as pd

        seen = np.concatenate(self.uniques) if self.uniques else np.zeros(0, object)
        self.uniques = []
        remap, vocabulary = pd.factorize(seen)  # first-seen order, as the chunks were read
        remap = remap.astype(np.int32)
        codes = {}
        for c in self.columns:
            chunks = self.parts.pop(c, [])
            codes[c] = remap[np.concatenate(chunks)] if chunks else np.zeros(0, np.int32)
        return np.asarray(vocabulary, dtype=object), codes


def _read_table(
    path: Path,
    columns: list[str] | None,
    groups: Mapping[str, Sequence[str]],
    numeric: Mapping[str, Any],
    **kwargs: Any,
) -> tuple[dict[str, _ChunkedCodes], dict[str, np.ndarray], int]:
    """Read a whitespace/CSV table in chunks with pandas' C parser.

    :returns: ``(string columns by group, numeric columns by name, number of rows)``.
    :raises _Malformed: on any parser error or missing field.
    """
    import pandas as pd

    dtype = {c: object for cols in groups.values() for c in cols} | dict(numeric)
    strings = {g: _ChunkedCodes(cols) for g, cols in groups.items()}
    parts: dict[str, list[np.ndarray]] = {c: [] for c in numeric}
    n = 0
    try:
        reader = pd.read_csv(
            path,
            engine="c",
            chunksize=CHUNK_ROWS,
            keep_default_na=False,
            na_values={"score": ["nan", "NaN", "NAN"], "truth": [""]},
            names=columns,
            dtype=dtype,
            **kwargs,
        )
        for chunk in reader:
            n += len(chunk)
            for group, cols in groups.items():
                for c in cols:
                    strings[group].add(c, chunk[c].to_numpy(dtype=object))
            for c in numeric:
                parts[c].append(chunk[c].to_numpy())
    except _Malformed:
        raise
    except Exception as exc:  # noqa: BLE001 - any parser error: find and name the bad line
        raise _Malformed(str(exc)) from None
    out = {c: np.concatenate(p) if p else np.zeros(0, numeric[c]) for c, p in parts.items()}
    return strings, out, n


def _read_bob(path: Path, fmt: str) -> ScoreSet:
    columns = BOB_COLUMNS[fmt]
    labels_group = ["test_label"] + (["model_label"] if fmt == "bob5" else [])
    try:
        strings, cols, n = _read_table(
            path,
            columns,
            {"ids": ["claimed_id", "real_id"], "labels": labels_group},
            {"score": np.float64},
            sep=r"\s+",
            header=None,
            comment="#",
            quoting=csv.QUOTE_NONE,
        )
    except _Malformed:
        return _read_bob_slow(path, fmt)
    if n == 0:
        raise DataError(f"{path}: the score file holds no trials")
    names, id_codes = strings["ids"].merge()
    ids, (claimed, real) = decoded(names, id_codes["claimed_id"], id_codes["real_id"])

    def samples() -> dict[str, Any]:
        vocabulary, codes = strings.pop("labels").merge()
        labels, (probe, *item) = decoded(vocabulary, *(codes[c] for c in labels_group))
        return {"labels": labels, "probe": probe, "reference": None, "item": next(iter(item), None)}

    return ScoreSet.with_deferred_samples(
        samples,
        ids,
        claimed,
        real,
        np.asarray(cols["score"], dtype=np.float64),
        path=path,
        format=fmt,
    )


def _data_lines(path: Path) -> Any:
    """``(line number, line)`` of each non-blank line not starting with ``#``."""
    with open(path, encoding="utf-8", newline="") as handle:
        for lineno, line in enumerate(handle, start=1):
            if line.strip() and not line.lstrip().startswith("#"):
                yield lineno, line


def _parse_score(path: Path, lineno: int, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise DataError(f"{path}:{lineno}: score {raw!r} is not a number") from None
    if math.isinf(value):
        raise DataError(f"{path}:{lineno}: score {raw!r} is infinite (NaN marks a failure)")
    return value


def _read_bob_slow(path: Path, fmt: str) -> ScoreSet:
    """Line-by-line reader: names the first malformed line, or reads what the fast one could not."""
    width = len(BOB_COLUMNS[fmt])
    rows: list[list[str]] = []
    values: list[float] = []
    for lineno, line in _data_lines(path):
        parts = line.split()
        if len(parts) != width:
            raise DataError(
                f"{path}:{lineno}: expected {width} columns "
                f"'{' '.join(BOB_COLUMNS[fmt])}', got {len(parts)}"
            )
        rows.append([unquote(p) for p in parts[:-1]])
        values.append(_parse_score(path, lineno, parts[-1]))
    if not rows:
        raise DataError(f"{path}: the score file holds no trials")
    cols = list(zip(*rows, strict=True))
    if fmt == "bob5":
        claimed, item, real, test = cols
    else:
        (claimed, real, test), item = cols, None
    s = score_set_from_lists(list(claimed), list(real), list(test), values, path=path, format=fmt)
    if item is not None:
        labels, codes = vocabulary_codes([*s.labels.tolist(), *item])
        s.labels, s.item = labels, codes[len(s.labels) :]
    return s


def _csv_columns(
    path: Path, metadata: Mapping[str, str], skipped: int
) -> tuple[list[str], bool, dict[str, list[str]], dict[str, Any]]:
    """``(header, attributes, string column groups, numeric column dtypes)`` of a CSV file."""
    try:
        header = next(csv.reader([_head(path)[2] or ""]))
    except csv.Error as exc:
        raise DataError(f"{path}:{skipped + 1}: malformed CSV header: {exc}") from None
    header = [h.strip() for h in header]
    kind = metadata.get("kind")
    attributes = kind == "attributes" or ("attribute" in header and "claimed_id" not in header)
    required = (
        ["test_label", "attribute", "truth", "score"]
        if attributes
        else ["claimed_id", "real_id", "test_label", "score"]
    )
    missing = [h for h in required if h not in header]
    if missing:
        raise DataError(f"{path}:{skipped + 1}: CSV header lacks columns {missing}")
    string_cols = [h for h in header if h not in ("score", "fold", "truth")]
    numeric: dict[str, Any] = {"score": np.float64}
    if "fold" in header:
        numeric["fold"] = np.int64
    if "truth" in header:
        numeric["truth"] = np.float64
    label_cols = [c for c in ("test_label", "reference_label", "gallery_label") if c in header]
    if attributes:
        groups = {"labels": ["test_label"], "attributes": ["attribute"]}
    else:
        groups = {"ids": ["claimed_id", "real_id"], "labels": label_cols}
    grouped = {c for cols in groups.values() for c in cols}
    groups |= {f"extra:{c}": [c] for c in string_cols if c not in grouped}
    return header, attributes, groups, numeric


def _read_csv(path: Path, metadata: dict[str, str], skipped: int) -> ScoreSet:
    header, attributes, groups, numeric = _csv_columns(path, metadata, skipped)
    kind = metadata.get("kind")
    try:
        strings, table, n = _read_table(
            path, None, groups, numeric, sep=",", header=0, skiprows=skipped
        )
    except _Malformed:
        _csv_slow_error(path, header, skipped)
        raise DataError(f"{path}: could not be read as a CSV score file") from None
    if n == 0:
        raise DataError(f"{path}: the score file holds no trials")
    score = np.asarray(table["score"], dtype=np.float64)
    common: dict[str, Any] = {
        "metadata": metadata,
        "path": path,
        "format": "csv",
        "rows": metadata.get("rows"),
        "kind": kind if kind in KINDS else None,
    }
    if attributes:
        labels, label_codes = strings["labels"].merge()
        names, attribute_codes = strings["attributes"].merge()
        empty = np.zeros(len(score), np.int32)
        return ScoreSet(
            np.asarray([], dtype=object),
            labels,
            empty,
            empty,
            label_codes["test_label"],
            score,
            attribute=attribute_codes["attribute"],
            attribute_names=names,
            truth=np.asarray(table["truth"], dtype=np.float64),
            **{**common, "kind": "attributes"},
        )
    ids, id_codes = strings["ids"].merge()

    def samples() -> dict[str, Any]:
        labels, codes = strings.pop("labels").merge()
        return {
            "labels": labels,
            "probe": codes["test_label"],
            "reference": codes.get("reference_label"),
            "item": codes.get("gallery_label"),
        }

    if "gallery_label" in header and common["rows"] is None:
        common["rows"] = "item"
    fold = np.asarray(table["fold"], dtype=np.int64) if "fold" in header else None
    return ScoreSet.with_deferred_samples(
        samples, ids, id_codes["claimed_id"], id_codes["real_id"], score, fold=fold, **common
    )


def _csv_slow_error(path: Path, header: list[str], skipped: int) -> None:
    """Raise a :class:`DataError` naming the first malformed CSV line (if one is found)."""
    with open(path, encoding="utf-8", newline="") as handle:
        lines = handle.read().splitlines()
    reader = csv.reader(lines[skipped + 1 :])
    numeric = {"score": "score", "fold": "fold", "truth": "truth"}
    for offset, row in enumerate(reader):
        lineno = skipped + 2 + offset
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        if len(row) != len(header):
            raise DataError(f"{path}:{lineno}: expected {len(header)} fields, got {len(row)}")
        for name, raw in zip(header, row, strict=True):
            if name in numeric:
                if name == "truth" and raw.strip() == "":
                    continue
                if name == "score":
                    _parse_score(path, lineno, raw)
                    continue
                try:
                    float(raw) if name == "truth" else int(raw)
                except ValueError:
                    raise DataError(f"{path}:{lineno}: {name} {raw!r} is not a number") from None
            elif raw == "":
                raise DataError(f"{path}:{lineno}: empty {name}")


def _check_finite(scores: ScoreSet) -> None:
    bad = np.flatnonzero(np.isinf(scores.score))
    if bad.size:
        raise DataError(
            f"{scores.where}:{_line_of(scores, int(bad[0]))}: score is infinite "
            "(NaN marks a failure to acquire; inf is not a score)"
        )


def _line_of(scores: ScoreSet, row: int) -> str:
    """Line number (as text) of data row ``row`` of the file ``scores`` was read from."""
    if scores.path is None:
        return f"row {row + 1}"
    count = -1 if scores.format == "csv" else 0  # the CSV header is the first data-like line
    for lineno, _ in _data_lines(scores.path):
        if count == row:
            return str(lineno)
        count += 1
    return f"row {row + 1}"


#: What ``biobench score`` does with a trial repeated in a file (:func:`repeated_trials`).
DUPLICATE_RULES = ("refuse", "first")


def repeated_trials(
    scores: ScoreSet, rule: str = "refuse", searches: bool = False
) -> tuple[ScoreSet, list[str]]:
    """``(scores, notes)`` after applying ``rule`` to trials that a file repeats.

    A trial is the row's :meth:`ScoreSet.trial_keys` (identities, test sample, and the
    reference, gallery item and fold where the file has them); counting it twice changes the
    rates.  ``refuse`` raises a :class:`DataError` naming the file, the line of the first
    repeat and of its first occurrence; ``first`` keeps the first row of each trial and says
    how many were dropped.  A file read as ``searches`` without a gallery-item column is left
    alone: its repeated (probe, identity) rows are gallery items, aggregated by rule
    (:mod:`biobench.scores.identification`).
    """
    if rule not in DUPLICATE_RULES:
        raise BiobenchError(f"duplicates must be one of {', '.join(DUPLICATE_RULES)}, got {rule!r}")
    if searches and scores.item is None:
        return scores, []
    repeats, firsts = scores.repeated_trials()
    if len(repeats) == 0:
        return scores, []
    where = f"{scores.where}:{_line_of(scores, int(repeats[0]))}"
    first_line = _line_of(scores, int(firsts[0]))
    if rule == "refuse":
        raise DataError(
            f"{where}: trial repeated (first at line {first_line}); {len(repeats)} repeated "
            "trials in the file would each be counted again (--duplicates first keeps the "
            "first of each)"
        )
    keep = np.ones(len(scores), bool)
    keep[repeats] = False
    note = (
        f"{len(repeats)} repeated trials dropped, the first of each kept (first repeat: "
        f"{where}, first seen at line {first_line})"
    )
    return scores.take(keep), [note]
