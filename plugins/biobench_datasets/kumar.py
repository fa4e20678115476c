"""Reader for the Kumar et al. 73-attribute files of LFW and PubFig.

``lfw_attributes.txt`` and ``pubfig_attributes.txt`` ship the outputs of the 73 "describable
visual attribute" classifiers of Kumar, Berg, Belhumeur and Nayar (ICCV 2009) in one
tab-separated format:

- line 1 is a ``#`` comment (``# PubFig Dataset v1.2 - pubfig_attributes.txt - <homepage>``);
- line 2 is the header and itself starts with a ``#`` *field*:
  ``#<TAB>person<TAB>imagenum<TAB>Male<TAB>Asian...``, so every column name is shifted by one
  against the data;
- data lines are ``person<TAB>imagenum<TAB>`` and 73 real numbers (classifier outputs; a value
  above 0 means the attribute is present).  Person names contain spaces (``Aaron Eckhart``), so
  lines are split on tabs only.

:func:`read_kumar_attributes` returns a DataFrame indexed by ``(person, imagenum)``.

Identity attributes
-------------------
The paper fuses only attributes that are constant for a person, 21 of them for LFW.
Kumar's list has no such label, so :data:`IDENTITY_ATTRIBUTES` is biobench's documented choice,
shared by the LFW and PubFig loaders.  Included (21):

- gender and race, fixed for a person: ``Male``, ``Asian``, ``White``, ``Black``, ``Indian``;
- age group, constant over the few years a person's photos span in these collections (LFW is
  news photos from 2002-2004; PubFig is mostly recent press photos): ``Child``, ``Youth``,
  ``Middle Aged``, ``Senior``.  ``Baby`` is excluded: no public figure in either set is a baby,
  so the classifier's output is noise;
- natural hair colour and hair loss: ``Black Hair``, ``Blond Hair``, ``Brown Hair``,
  ``Gray Hair``, ``Bald``, ``Receding Hairline`` (dyeing exists but is rare within one set);
- facial geometry, set by the skull and cartilage: ``Big Nose``, ``Pointy Nose``, ``Big Lips``,
  ``Oval Face``, ``Square Face``, ``Round Face``.

Excluded, because they change from one photo of the same person to the next:

- eyewear and headwear, accessories, makeup: ``No Eyewear``, ``Eyeglasses``, ``Sunglasses``,
  ``Wearing Hat``, ``Wearing Earrings``, ``Wearing Necktie``, ``Wearing Necklace``,
  ``Heavy Makeup``, ``Wearing Lipstick``;
- facial hair, which is shaved or grown: ``Mustache``, ``No Beard``, ``Goatee``, ``Sideburns``,
  ``5 o' Clock Shadow``;
- expression and pose: ``Smiling``, ``Frowning``, ``Mouth Closed``, ``Mouth Slightly Open``,
  ``Mouth Wide Open``, ``Teeth Not Visible``, ``Eyes Open``, ``Narrow Eyes``,
  ``High Cheekbones`` and ``Strong Nose-Mouth Lines`` (both move with a smile), ``Posed Photo``;
- hair style rather than hair: ``Curly Hair``, ``Wavy Hair``, ``Straight Hair``, ``Bangs``,
  ``Fully Visible Forehead``, ``Partially Visible Forehead``, ``Obstructed Forehead``;
- imaging conditions: ``Blurry``, ``Harsh Lighting``, ``Flash``, ``Soft Lighting``, ``Outdoor``,
  ``Color Photo``, and skin appearance that depends on light and make-up: ``Shiny Skin``,
  ``Pale Skin``, ``Rosy Cheeks``, ``Flushed Face``, ``Brown Eyes`` (eye colour is fixed, but the
  classifier mostly sees lighting at these resolutions);
- traits that vary with weight, fatigue or grooming: ``Chubby``, ``Double Chin``, ``Round Jaw``,
  ``Bags Under Eyes``, ``Bushy Eyebrows``, ``Arched Eyebrows``;
- subjective judgements: ``Attractive Man``, ``Attractive Woman`` (they also duplicate ``Male``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from biobench.api import DataError

#: The 73 attribute names, in file order (the header of ``lfw_attributes.txt`` without
#: ``person`` and ``imagenum``).
KUMAR_ATTRIBUTES: tuple[str, ...] = (
    "Male", "Asian", "White", "Black", "Baby", "Child", "Youth", "Middle Aged", "Senior",
    "Black Hair", "Blond Hair", "Brown Hair", "Bald", "No Eyewear", "Eyeglasses", "Sunglasses",
    "Mustache", "Smiling", "Frowning", "Chubby", "Blurry", "Harsh Lighting", "Flash",
    "Soft Lighting", "Outdoor", "Curly Hair", "Wavy Hair", "Straight Hair", "Receding Hairline",
    "Bangs", "Sideburns", "Fully Visible Forehead", "Partially Visible Forehead",
    "Obstructed Forehead", "Bushy Eyebrows", "Arched Eyebrows", "Narrow Eyes", "Eyes Open",
    "Big Nose", "Pointy Nose", "Big Lips", "Mouth Closed", "Mouth Slightly Open",
    "Mouth Wide Open", "Teeth Not Visible", "No Beard", "Goatee", "Round Jaw", "Double Chin",
    "Wearing Hat", "Oval Face", "Square Face", "Round Face", "Color Photo", "Posed Photo",
    "Attractive Man", "Attractive Woman", "Indian", "Gray Hair", "Bags Under Eyes",
    "Heavy Makeup", "Rosy Cheeks", "Shiny Skin", "Pale Skin", "5 o' Clock Shadow",
    "Strong Nose-Mouth Lines", "Wearing Lipstick", "Flushed Face", "High Cheekbones",
    "Brown Eyes", "Wearing Earrings", "Wearing Necktie", "Wearing Necklace",
)  # fmt: skip

#: The 21 attributes biobench treats as constant for a person (see the module docstring).
IDENTITY_ATTRIBUTES: tuple[str, ...] = (
    "Male", "Asian", "White", "Black", "Indian",
    "Child", "Youth", "Middle Aged", "Senior",
    "Black Hair", "Blond Hair", "Brown Hair", "Gray Hair", "Bald", "Receding Hairline",
    "Big Nose", "Pointy Nose", "Big Lips", "Oval Face", "Square Face", "Round Face",
)  # fmt: skip


def folder_name(person: str) -> str:
    """The image-folder spelling of a person's name: ``Aaron Eckhart`` -> ``Aaron_Eckhart``.

    A name read from a file becomes a folder name: one that could leave the data root (a path
    separator, a leading dot, ``..``) is a :class:`DataError`, never a path.
    """
    folder = person.replace(" ", "_")
    if not folder or folder.startswith(".") or any(c in folder for c in "/\\\0"):
        raise DataError(f"person name {person!r} cannot be used as a folder name")
    return folder


def read_lines(path: Path) -> list[str]:
    """Read a publisher text file as lines with ``\\r`` and trailing blanks stripped.

    The files are ASCII in practice; a stray Latin-1 byte in a name is tolerated rather than
    refused, since nothing else in the file depends on it.
    """
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror})") from exc
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    return [line.rstrip(" \t\r") for line in text.split("\n")]


def header_fields(line: str) -> list[str] | None:
    """Column names of a ``#``-prefixed header line, or None if ``line`` is not a comment.

    ``#<TAB>person<TAB>imagenum`` gives ``["person", "imagenum"]``; a header glued to its
    ``#`` (``#person<TAB>imagenum``, seen in some re-distributed copies) gives the same.
    """
    if not line.startswith("#"):
        return None
    fields = line.split("\t")
    first = fields[0][1:].strip()
    names = fields[1:] if not first else [first, *fields[1:]]
    return [n.strip() for n in names]


def read_kumar_attributes(path: Path, *, binarize: bool = True) -> pd.DataFrame:
    """Read a Kumar attribute file into a DataFrame indexed by ``(person, imagenum)``.

    :param path: ``lfw_attributes.txt`` or ``pubfig_attributes.txt``.
    :param binarize: map classifier outputs to 1.0 (value > 0, present) and 0.0; otherwise
        return the raw real values.
    :returns: one float32 column per attribute, in file order; ``person`` keeps the file's
        spelling (spaces), ``imagenum`` is an int.
    :raises DataError: naming the file and line for a missing header, a wrong field count, a
        non-numeric value or a duplicated ``(person, imagenum)``.
    """
    path = Path(path)
    names: list[str] | None = None
    persons: list[str] = []
    numbers: list[int] = []
    values: list[list[float]] = []
    seen: dict[tuple[str, int], int] = {}
    for lineno, line in enumerate(read_lines(path), start=1):
        if not line.strip():
            continue
        fields = header_fields(line)
        if fields is not None:
            if fields and fields[0].lower() == "person":
                names = _check_header(fields, path, lineno)
            continue  # any other comment line
        if names is None:
            raise DataError(
                f"{path}, line {lineno}: data before the header line "
                "('#<TAB>person<TAB>imagenum<TAB>attribute names...')"
            )
        parts = line.split("\t")
        if len(parts) != len(names) + 2:
            raise DataError(
                f"{path}, line {lineno}: expected {len(names) + 2} tab-separated fields "
                f"(person, imagenum and {len(names)} attributes), got {len(parts)}"
            )
        person = parts[0].strip()
        try:
            number = int(parts[1])
        except ValueError:
            raise DataError(
                f"{path}, line {lineno}: image number {parts[1]!r} is not an integer"
            ) from None
        try:
            row = [float(v) for v in parts[2:]]
        except ValueError as exc:
            raise DataError(f"{path}, line {lineno}: {exc}") from None
        if not all(math.isfinite(v) for v in row):
            raise DataError(f"{path}, line {lineno}: non-finite attribute value")
        key = (person, number)
        if key in seen:
            raise DataError(
                f"{path}, line {lineno}: ({person!r}, {number}) already given on line {seen[key]}"
            )
        seen[key] = lineno
        persons.append(person)
        numbers.append(number)
        values.append(row)
    if names is None:
        raise DataError(f"{path}: no header line ('#<TAB>person<TAB>imagenum<TAB>...')")
    array = np.asarray(values, dtype=np.float64).reshape(len(values), len(names))
    if binarize:
        array = (array > 0).astype(np.float32)
    else:
        array = array.astype(np.float32)
    index = pd.MultiIndex.from_arrays(
        [pd.Index(persons, dtype=object), pd.Index(numbers, dtype=np.int64)],
        names=["person", "imagenum"],
    )
    frame = pd.DataFrame(array, index=index, columns=names)
    frame.attrs["source"] = str(path)
    return frame


def _check_header(fields: list[str], path: Path, lineno: int) -> list[str]:
    if len(fields) < 3 or fields[1].lower() != "imagenum":
        raise DataError(
            f"{path}, line {lineno}: header must start with 'person<TAB>imagenum', got {fields[:3]}"
        )
    names = fields[2:]
    if any(not n for n in names):
        raise DataError(f"{path}, line {lineno}: empty attribute name in the header")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise DataError(f"{path}, line {lineno}: attribute names repeated: {dupes}")
    return names


def attribute_matrix(
    frame: pd.DataFrame, persons: list[str], numbers: list[int]
) -> tuple[np.ndarray, np.ndarray]:
    """Look up rows for each ``(person, imagenum)``; NaN where the file has no row.

    :returns: ``(values float32 [N, T], found bool [N])``.
    """
    lookup = pd.MultiIndex.from_arrays(
        [pd.Index(persons, dtype=object), pd.Index(numbers, dtype=np.int64)]
    )
    position = frame.index.get_indexer(lookup)
    found = position >= 0
    out = np.full((len(persons), frame.shape[1]), np.nan, dtype=np.float32)
    out[found] = frame.to_numpy(dtype=np.float32)[position[found]]
    return out, found
