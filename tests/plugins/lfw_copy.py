"""A tiny LFW in the exact published layout, shared by the LFW, preprocessing and protocol tests.

``lfw/<Name>/<Name>_<NNNN>.jpg``, ``pairs.txt`` with and without its count line,
``people.txt`` with its sets, and ``lfw_attributes.txt`` with the shifted '#' header, names with
spaces, and rows missing for some images.  Tests outside test_datasets_lfw.py get ``write_lfw``
as a fixture (tests/plugins/conftest.py).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from biobench_datasets.kumar import KUMAR_ATTRIBUTES
from PIL import Image

#: People and image counts (as people.txt lists them).  Hugo_Chavez_0002 is absent on disk.
PEOPLE = {
    "Aaron_Eckhart": 1,
    "Ann_Veneman": 4,
    "Colin_Powell": 5,
    "George_W_Bush": 6,
    "Hugo_Chavez": 4,
    "Tony_Blair": 3,
    "Zico": 2,
}


ABSENT = {("Hugo_Chavez", 2)}


#: Images without a row in lfw_attributes.txt.
NO_ATTRIBUTES = {("Ann_Veneman", 3), ("Zico", 2), ("Aaron_Eckhart", 1)}


SET1 = [
    "George_W_Bush\t1\t2",
    "Colin_Powell\t1\t3",
    "Aaron_Eckhart\t1\tGeorge_W_Bush\t3",
    "Zico\t1\tAnn_Veneman\t2",
]


SET2 = [
    "Hugo_Chavez\t1\t2",
    "Ann_Veneman\t1\t3",
    "Zico\t2\tColin_Powell\t4",
    "George_W_Bush\t4\tHugo_Chavez\t3",
]


def photo(name: str, number: int) -> bytes:
    """A 250x250 JPEG: a grey frame around a bright centre whose colour encodes the person."""
    pixels = np.full((250, 250, 3), 40, dtype=np.uint8)
    shade = (sorted(PEOPLE).index(name) * 30 + number * 5) % 200 + 50
    pixels[75:175, 75:175] = (shade, 255 - shade, 200)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=95)
    return out.getvalue()


def write_attributes(path: Path, eol: str = "\n") -> None:
    lines = [
        "# Auto-generated attributes for LFW (Kumar et al.)",
        "\t".join(["#", "person", "imagenum", *KUMAR_ATTRIBUTES]),
    ]
    for name, count in PEOPLE.items():
        for k in range(1, count + 1):
            if (name, k) in NO_ATTRIBUTES:
                continue
            values = [-0.8] * len(KUMAR_ATTRIBUTES)
            values[KUMAR_ATTRIBUTES.index("Male")] = -1.5 if name == "Ann_Veneman" else 1.1
            values[KUMAR_ATTRIBUTES.index("Smiling")] = 0.3 if k % 2 == 0 else -0.3
            # The attribute file spells names with spaces; folders use underscores.
            person = name.replace("_", " ")
            lines.append("\t".join([person, str(k), *(f"{v:.5f}" for v in values)]))
    path.write_bytes((eol.join(lines) + eol).encode())


def write_lfw(root: Path, *, eol: str = "\n", count_line: bool = True, folder: str = "lfw") -> Path:
    for name, count in PEOPLE.items():
        (root / folder / name).mkdir(parents=True, exist_ok=True)
        for k in range(1, count + 1):
            if (name, k) not in ABSENT:
                (root / folder / name / f"{name}_{k:04d}.jpg").write_bytes(photo(name, k))
    pairs = (["2\t2"] if count_line else []) + SET1 + SET2
    (root / "pairs.txt").write_bytes((eol.join(pairs) + eol).encode())
    dev_test = ["1", "Colin_Powell\t2\t5", "Tony_Blair\t1\tZico\t1"]
    (root / "pairsDevTest.txt").write_bytes((eol.join(dev_test) + eol).encode())
    names = list(PEOPLE)
    people = ["2", "4", *(f"{n}\t{PEOPLE[n]}" for n in names[:4])]
    people += ["3", *(f"{n}\t{PEOPLE[n]}" for n in names[4:])]
    (root / "people.txt").write_bytes((eol.join(people) + eol).encode())
    write_attributes(root / "lfw_attributes.txt", eol)
    return root
