"""The Kumar 73-attribute reader, on tiny files in the exact published format."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from biobench_datasets.kumar import (
    IDENTITY_ATTRIBUTES,
    KUMAR_ATTRIBUTES,
    attribute_matrix,
    folder_name,
    read_kumar_attributes,
)

from biobench.errors import DataError

COMMENT = "# PubFig Dataset v1.2 - pubfig_attributes.txt - http://www.cs.columbia.edu/CAVE/"


def write_kumar(path: Path, rows: list[tuple[str, int, list[float]]], *, eol: str = "\n") -> Path:
    """Write a Kumar attribute file: comment, shifted '#' header, tab-separated rows."""
    lines = [COMMENT, "\t".join(["#", "person", "imagenum", *KUMAR_ATTRIBUTES])]
    for person, num, values in rows:
        lines.append("\t".join([person, str(num), *(f"{v:.6f}" for v in values)]))
    path.write_bytes((eol.join(lines) + eol).encode())
    return path


def values_with(**present: float) -> list[float]:
    """73 negative scores except the named attributes (underscores stand for spaces)."""
    out = [-1.25] * len(KUMAR_ATTRIBUTES)
    for name, value in present.items():
        out[KUMAR_ATTRIBUTES.index(name.replace("_", " "))] = value
    return out


def test_identity_attributes_are_21_kumar_attributes() -> None:
    assert len(KUMAR_ATTRIBUTES) == 73 == len(set(KUMAR_ATTRIBUTES))
    assert len(IDENTITY_ATTRIBUTES) == 21
    assert set(IDENTITY_ATTRIBUTES) <= set(KUMAR_ATTRIBUTES)
    # Per-image attributes must never be treated as constant for a person.
    assert not {"Eyeglasses", "Smiling", "Goatee", "Wearing Hat"} & set(IDENTITY_ATTRIBUTES)


@pytest.mark.parametrize("eol", ["\n", "\r\n"])
def test_header_shift_spaces_and_binarisation(tmp_path: Path, eol: str) -> None:
    path = write_kumar(
        tmp_path / "attrs.txt",
        [
            ("Aaron Eckhart", 1, values_with(Male=1.5, Black_Hair=0.01)),
            ("Abhishek Bachan", 12, values_with(Indian=2.0, Male=0.0)),
        ],
        eol=eol,
    )
    frame = read_kumar_attributes(path)
    # The header's leading '#' field must not shift the names onto the wrong columns.
    assert list(frame.columns) == list(KUMAR_ATTRIBUTES)
    assert list(frame.index) == [("Aaron Eckhart", 1), ("Abhishek Bachan", 12)]
    assert frame.loc[("Aaron Eckhart", 1), "Male"] == 1.0
    assert frame.loc[("Aaron Eckhart", 1), "Black Hair"] == 1.0
    assert frame.loc[("Aaron Eckhart", 1), "Asian"] == 0.0
    # Exactly 0 is "not present" (> 0 means present).
    assert frame.loc[("Abhishek Bachan", 12), "Male"] == 0.0
    assert frame.loc[("Abhishek Bachan", 12), "Indian"] == 1.0
    assert frame.to_numpy().sum() == 3.0
    raw = read_kumar_attributes(path, binarize=False)
    assert raw.loc[("Aaron Eckhart", 1), "Male"] == pytest.approx(1.5)
    assert raw.loc[("Aaron Eckhart", 1), "Asian"] == pytest.approx(-1.25)


def test_trailing_blanks_and_glued_header(tmp_path: Path) -> None:
    header = "#person\timagenum\tMale\tAsian"
    path = tmp_path / "a.txt"
    path.write_text(f"# comment \n{header}  \nJo Doe\t3\t0.5\t-0.5 \t\n\n")
    frame = read_kumar_attributes(path)
    assert list(frame.columns) == ["Male", "Asian"]
    assert frame.loc[("Jo Doe", 3)].tolist() == [1.0, 0.0]


def test_join_leaves_nan_for_missing_rows(tmp_path: Path) -> None:
    frame = read_kumar_attributes(
        write_kumar(tmp_path / "a.txt", [("A B", 1, values_with(Male=1.0))])
    )
    values, found = attribute_matrix(frame, ["A B", "A B", "C"], [1, 2, 1])
    assert found.tolist() == [True, False, False]
    assert values[0, KUMAR_ATTRIBUTES.index("Male")] == 1.0
    assert np.isnan(values[1:]).all()
    assert folder_name("Aaron Eckhart") == "Aaron_Eckhart"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("# c\n#\tperson\timagenum\tMale\nA B\t1\n", "line 3: expected 3 tab-separated fields"),
        ("# c\n#\tperson\timagenum\tMale\nA B\tx\t1.0\n", "line 3: image number 'x'"),
        ("# c\n#\tperson\timagenum\tMale\nA B\t1\tyes\n", "line 3:"),
        ("# c\n#\tperson\timagenum\tMale\nA B\t1\tnan\n", "line 3: non-finite"),
        ("# c\nA B\t1\t0.5\n", "line 2: data before the header"),
        ("# c\n#\tperson\tnum\tMale\n", "line 2: header must start"),
        ("# only a comment\n", "no header line"),
        ("# c\n#\tperson\timagenum\tMale\nA\t1\t1\n\nA\t1\t2\n", "line 5: ('A', 1) already"),
        # Names with spaces: splitting on any whitespace would be wrong, tabs are required.
        ("# c\n#\tperson\timagenum\tMale\nA B 1 0.5\n", "line 3: expected 3"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "lfw_attributes.txt"
    path.write_text(content)
    with pytest.raises(DataError, match="lfw_attributes.txt") as info:
        read_kumar_attributes(path)
    assert message in str(info.value)
