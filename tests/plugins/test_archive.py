"""Archive safety, once, for the extraction code every dataset's ``prepare`` shares.

Each attack is refused before anything is written, with a DataError naming the archive and the
member; the datasets' own tests only check that their ``prepare`` goes through this code.
"""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from biobench_datasets._archive import extract_archive

from biobench.errors import DataError


def zip_with(path: Path, members: dict[str, bytes], link: tuple[str, str] | None = None) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, body in members.items():
            zf.writestr(name, body)
        if link is not None:
            info = zipfile.ZipInfo(link[0])
            info.create_system = 3
            info.external_attr = 0o120777 << 16  # S_IFLNK
            zf.writestr(info, link[1])
    return path


def tar_with(path: Path, members: dict[str, bytes], special: tarfile.TarInfo | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tf.addfile(info, io.BytesIO(body))
        if special is not None:
            tf.addfile(special)
    return path


def link_member(kind: bytes, name: str = "data/link") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = "/etc/passwd"
    return info


def fifo_member() -> tarfile.TarInfo:
    info = tarfile.TarInfo("data/fifo")
    info.type = tarfile.FIFOTYPE
    return info


GOOD = {"data/a.txt": b"a", "data/sub/b.txt": b"b"}

ATTACKS = {
    "zip traversal": (
        lambda p: zip_with(p / "x.zip", {**GOOD, "data/../../evil": b"x"}),
        "escapes",
    ),
    "zip backslash traversal": (
        lambda p: zip_with(p / "x.zip", {**GOOD, "data\\..\\..\\evil": b"x"}),
        "escapes",
    ),
    "zip absolute": (lambda p: zip_with(p / "x.zip", {**GOOD, "/tmp/evil": b"x"}), "absolute"),
    "zip drive letter": (lambda p: zip_with(p / "x.zip", {**GOOD, "C:/evil": b"x"}), "absolute"),
    "zip symlink": (lambda p: zip_with(p / "x.zip", GOOD, ("data/link", "/etc/passwd")), "link"),
    "tar traversal": (lambda p: tar_with(p / "x.tgz", {**GOOD, "../evil": b"x"}), "escapes"),
    "tar absolute": (lambda p: tar_with(p / "x.tgz", {**GOOD, "/tmp/evil": b"x"}), "absolute"),
    "tar symlink": (lambda p: tar_with(p / "x.tgz", GOOD, link_member(tarfile.SYMTYPE)), "link"),
    "tar hard link": (lambda p: tar_with(p / "x.tgz", GOOD, link_member(tarfile.LNKTYPE)), "link"),
    "tar fifo": (lambda p: tar_with(p / "x.tgz", GOOD, fifo_member()), "fifo|special|device"),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_unsafe_member_refused_and_nothing_written(attack: str, tmp_path: Path) -> None:
    make, message = ATTACKS[attack]
    (tmp_path / "src").mkdir()
    archive = make(tmp_path / "src")
    dest = tmp_path / "dest"
    with pytest.raises(DataError, match=message) as info:
        extract_archive(archive, dest)
    assert str(archive) in str(info.value)
    assert not dest.exists() or not any(dest.rglob("*"))
    assert not (tmp_path / "evil").exists()


def test_safe_archives_extract_with_a_filter(tmp_path: Path) -> None:
    for archive in (zip_with(tmp_path / "ok.zip", GOOD), tar_with(tmp_path / "ok.tgz", GOOD)):
        dest = tmp_path / archive.stem
        written = extract_archive(archive, dest, member_filter=lambda n: n.endswith("b.txt"))
        assert [p.relative_to(dest).as_posix() for p in written] == ["data/sub/b.txt"]
        assert (dest / "data/sub/b.txt").read_bytes() == b"b"


def test_not_an_archive(tmp_path: Path) -> None:
    (tmp_path / "plain.txt").write_text("hello")
    with pytest.raises(DataError, match="not a zip or tar archive"):
        extract_archive(tmp_path / "plain.txt", tmp_path / "dest")
