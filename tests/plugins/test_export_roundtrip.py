"""The synthetic faces exported in CelebA's layout read back through the CelebA loader."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from biobench.contracts import DataContext
from biobench.testing import new_plugin_manager


def test_synthfaces_celeba_export_reads_back(run_cli, tmp_path: Path) -> None:
    options = ["-o", "identities=4", "-o", "images_per_identity=6", "--image-size", "32"]
    out = tmp_path / "celeba-export"
    result = run_cli("data", "export", "synthfaces", *options, "--format", "celeba", str(out))
    assert result.exit_code == 0, result.output
    for name in ("list_attr_celeba.txt", "identity_CelebA.txt", "list_eval_partition.txt"):
        assert (out / name).exists()
    assert len(list((out / "img_align_celeba").glob("*.jpg"))) == 24

    pm = new_plugin_manager()
    ctx = DataContext(roots=[tmp_path], cache_dir=tmp_path / "cache", image_size=32, progress=False)
    synth, _ = pm.build("dataset", "synthfaces", {"identities": 4, "images_per_identity": 6})
    original = synth.load(ctx)
    celeba, _ = pm.build(
        "dataset",
        "celeba",
        {"split": "none", "identity_attributes": list(original.identity_attributes)},
    )
    back = celeba.load(
        DataContext(roots=[out], cache_dir=tmp_path / "cache2", image_size=32, progress=False)
    )
    # The export records which source image each CelebA file holds: compare sample by sample.
    files = json.loads((out / "biobench_export.json").read_text())["files"]
    position = {key: i for i, key in enumerate(original.keys)}
    order = np.array([position[files[k]] for k in back.keys])
    assert back.attribute_names == original.attribute_names
    np.testing.assert_array_equal(back.attributes, original.attributes[order])
    # Same people: two images share a CelebA identity exactly when they share a synthetic one.
    same_back = back.identities[:, None] == back.identities[None, :]
    src = original.identities[order]
    np.testing.assert_array_equal(same_back, src[:, None] == src[None, :])
    assert back.identity_attributes == original.identity_attributes
    diff = np.abs(back.images.astype(int) - original.images[order].astype(int))
    assert diff.mean() < 6, diff.mean()
