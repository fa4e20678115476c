"""Score files: Bob 4-column and CSV writing, reading back, and re-scoring."""

from __future__ import annotations

import numpy as np
import pytest
from biobench_metrics.metrics import METRICS
from test_metrics_plugin import make_evaluation  # tests/ is on sys.path (rootdir prepend)

from biobench import scores as sc
from biobench.errors import BiobenchError, DataError


def _metric(name: str, **options):  # noqa: ANN003, ANN202
    return METRICS[name](**options)


def test_write_scores_round_trip(tmp_path) -> None:  # noqa: ANN001
    ev = make_evaluation()
    meta = {"protocol": "demo", "protocol_version": 3, "run": "case 1", "seed": 2}
    written = sc.write_scores(ev, tmp_path / "scores", metadata=meta)
    assert sorted(written) == [
        "identification_csv",
        "identification_scores",
        "verification_csv",
        "verification_scores",
    ]
    assert not [p for p in (tmp_path / "scores").iterdir() if p.name.startswith(".")]
    bob = sc.read_scores(written["verification_scores"])
    csv = sc.read_scores(written["verification_csv"])
    # Names with spaces survive the whitespace-separated format.
    assert bob.claimed_id == csv.claimed_id and bob.test_label == csv.test_label
    assert any(" " in name for name in bob.claimed_id)
    np.testing.assert_array_equal(bob.score, csv.score)  # repr() floats: exact
    assert csv.kind == "verification" and bob.kind is None
    assert csv.metadata["protocol_version"] == "3" and csv.metadata["run"] == "case 1"
    assert "cosine" in csv.metadata["score"]
    assert csv.reference_label is not None and len(csv.reference_label) == len(csv)
    ident = sc.read_scores(written["identification_csv"])
    assert len(ident) == len(ev.keys) * len(ev.identity_names)  # small: the full matrix
    assert ident.metadata["candidates"] == "all classes"


def test_score_file_reproduces_the_metric(tmp_path) -> None:  # noqa: ANN001
    ev = make_evaluation()
    written = sc.write_scores(ev, tmp_path)
    metric = _metric("verification").compute(ev)
    for key in ("verification_scores", "verification_csv"):
        values = sc.score_file(written[key], ["verification"])
        assert set(values) == {k for k in metric.values if not k.startswith("accuracy_")}
        for name, value in values.items():
            np.testing.assert_equal(value, metric.values[name], err_msg=name)  # NaN == NaN
        assert 0 < values["eer"] < 0.5 and values["tar_at_far_1e_1"] > 0
    ident_metric = _metric("identification", nearest_neighbour=False).compute(ev)
    values = sc.score_file(written["identification_scores"], ["identification"], {"k": [1, 5]})
    assert values["top1_accuracy"] == ident_metric.values["top1_accuracy"]
    assert values["top5_accuracy"] == ident_metric.values["top5_accuracy"]
    # The CSV says what it is: no metric names needed.
    assert "top1_accuracy" in sc.score_file(written["identification_csv"])


def test_top_candidates_keep_rank_k_exact(tmp_path) -> None:  # noqa: ANN001
    ev = make_evaluation(n_classes=12)
    full = sc.identification_score_set(ev)
    top = sc.identification_score_set(ev, full_matrix_limit=10, top_candidates=3)
    assert len(top) < len(full)
    assert "top 3" in top.metadata["candidates"]
    a = sc.score_set_metrics(full, ["identification"], {"k": [1, 2, 3]})["identification"]
    b = sc.score_set_metrics(top, ["identification"], {"k": [1, 2, 3]})["identification"]
    assert a["values"] == b["values"]


def test_identification_scores_from_embeddings_without_identity_head(tmp_path) -> None:  # noqa: ANN001
    ev = make_evaluation()
    ev.identity_scores = None
    written = sc.write_scores(ev, tmp_path)
    meta = sc.read_scores(written["identification_csv"]).metadata
    assert "gallery" in meta["score"]
    values = sc.score_file(written["identification_csv"])
    metric = _metric("identification").compute(ev)
    assert values["top1_accuracy"] == pytest.approx(metric.values["nn_top1_accuracy"])


def test_third_party_bob_file(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "system.txt"
    path.write_text(
        "alice alice probe1 0.9\nalice bob probe2 0.2\nbob bob probe3 0.7\nbob alice probe4 0.75\n"
    )
    values = sc.score_file(path, ["verification"], {"far": 0.5})
    # genuine 0.9, 0.7; impostor 0.2, 0.75: FAR=FRR=0.5 at 0.75 -> EER is 0.5 (crossing
    # between (FAR 0, FRR 0.5) and (FAR 0.5, FRR 0.5)).
    assert values["eer"] == pytest.approx(0.5)
    assert values["auc"] == pytest.approx(0.75)
    assert values["tar_at_far_5e_1"] == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a a p1 0.5\na b p2\n", r"system.txt:2: expected 4 columns"),
        ("a a p1 high\n", r"system.txt:1: score 'high' is not a number"),
        ("# kind: verification\nclaimed_id,real_id,test_label,score\na,a,p,x\n", r":3: score"),
        ("claimed_id,real_id,score\na,a,0.1\n", r"lacks columns \['test_label'\]"),
    ],
)
def test_malformed_files_name_file_and_line(tmp_path, content: str, message: str) -> None:  # noqa: ANN001
    path = tmp_path / "system.txt"
    path.write_text(content)
    with pytest.raises(DataError, match=message):
        sc.read_scores(path)


def test_score_file_rejects_unknown_metric_and_option(tmp_path) -> None:  # noqa: ANN001
    path = tmp_path / "s.txt"
    path.write_text("a a p1 0.9\na b p2 0.1\n")
    with pytest.raises(BiobenchError, match="support metrics"):
        sc.score_file(path, ["attributes"])
    with pytest.raises(BiobenchError, match="unknown score options"):
        sc.score_file(path, ["verification"], {"fars": 0.1})
    with pytest.raises(BiobenchError, match="cannot read"):
        sc.score_file(tmp_path / "missing.txt")


def test_atomic_write_leaves_previous_file_on_error(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    path = tmp_path / "scores.csv"
    sc.atomic_write_text(path, "old\n")

    def broken_replace(src, dst):  # noqa: ANN001, ANN202
        raise OSError("disk full")

    monkeypatch.setattr("os.replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        sc.atomic_write_text(path, "new\n")
    assert path.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["scores.csv"]
