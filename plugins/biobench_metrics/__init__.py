"""biobench_metrics: the built-in metric plugins.

Registered under the ``biobench`` entry-point group as ``metrics``, exactly as a third-party
plugin would be.  Importing this module, and registering, is cheap: the metric classes (and
scikit-learn, scipy, torch behind them) are imported only when a metric is instantiated, so
``biobench plugins`` and registry builds stay fast.
"""

from __future__ import annotations

from biobench.api import Register, hookimpl

#: Metric name -> one-line description (the classes in ``biobench_metrics.metrics`` say more).
DESCRIPTIONS = {
    "identification": "Closed-set identification: rank-k accuracy and CMC "
    "(identity head and 1:N nearest-neighbour search).",
    "open_set_identification": "Open-set identification (NIST): DIR and FNIR at fixed FPIR "
    "(and DIR, FPIR at given thresholds), with a seeded held-out part of the identities.",
    "verification": "1:1 verification from embedding pairs: EER, TAR@FAR, ROC AUC, DET, "
    "k-fold accuracy, FRR@FAR, FAR@FRR, min HTER, min DCF, ROCCH-EER, minCllr, AP "
    "(convention biobench or bob).",
    "attributes": "Facial attributes: per-attribute and mean accuracy, balanced accuracy, "
    "majority baseline.",
}


#: Metric name -> class in ``biobench_metrics.metrics`` (imported on first use).
CLASSES = {
    "identification": "IdentificationMetric",
    "open_set_identification": "OpenSetIdentificationMetric",
    "verification": "VerificationMetric",
    "attributes": "AttributesMetric",
}


@hookimpl
def biobench_register_metrics(register: Register) -> None:
    """Register identification, open_set_identification, verification and attributes."""
    for name, description in DESCRIPTIONS.items():
        register(name, f"biobench_metrics.metrics:{CLASSES[name]}", description=description)
