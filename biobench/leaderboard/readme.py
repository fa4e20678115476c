"""The README's results section, generated from the claims CSVs of a leaderboard folder.

Every result sentence of the README's "Results" section is a claim row of
``<output>/<protocol>_claims.csv`` (:func:`results_section`); nothing there is typed by hand.
The section sits between :data:`BEGIN` and :data:`END` in ``README.md``; ``make leaderboards``
rewrites it (``python -m biobench.leaderboard.readme --write README.md``) and a test checks that
the committed README matches the committed CSVs (``--check``).

A claims CSV written before claims were tested by the paired bootstrap (no ``method`` column)
is not quoted: its verdicts came from a t test over seeds alone, and the section says that the
protocol's claims await a rebuild.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from biobench import numbers
from biobench.atomic import write_text
from biobench.errors import BiobenchError

__all__ = ["BEGIN", "END", "check", "results_section", "update"]

BEGIN = "<!-- results: generated from leaderboards/*_claims.csv; do not edit by hand -->"
END = "<!-- end of results -->"


def _interval(row: pd.Series) -> str:
    low, high = float(row["ci95_low"]), float(row["ci95_high"])
    if not (math.isfinite(low) and math.isfinite(high)):
        return ""
    return f" (95 % interval {numbers.number(low, 3)} to {numbers.number(high, 3)})"


def _sentence(row: pd.Series) -> str:
    claim = f"`{row['better']}` beats `{row['than']}` on `{row['metric']}`"
    if isinstance(row.get("note"), str) and row["note"]:
        claim += f" ({row['note']})"
    verdict = f"**{row['verdict']}**"
    if row["verdict"] == "cannot test":
        return f"{claim}: {verdict}, {row['reason']}."
    difference = float(row["mean_difference"])
    text = (
        f"{claim}: difference {difference:+.3f}{_interval(row)} over "
        f"{int(row['n_common_seeds'])} seeds, p (Holm) {numbers.p_value(float(row['p_holm']))}: "
        f"{verdict}"
    )
    if isinstance(row.get("reason"), str) and row["reason"]:
        text += f" ({row['reason']})"
    return text + "."


def results_section(output: Path) -> str:
    """The section's Markdown (without the markers) from ``output/*_claims.csv``."""
    files = sorted(Path(output).glob("*_claims.csv"), key=lambda p: p.name[: -len("_claims.csv")])
    if not files:
        raise BiobenchError(f"no *_claims.csv under {output}; run 'biobench leaderboard build'")
    lines = [
        "Generated from the claims CSVs of `leaderboards/`: one line per claim, nothing else. "
        "Each claim is tested on per-trial outcomes from the runs' score files by a paired "
        "bootstrap over test identities and seeds; p-values are Holm-corrected over every claim "
        "below, all protocols together; *supported* or *contradicted* need at least 5 seeds. "
        "The measured numbers themselves are in each protocol's board.",
        "",
    ]
    for path in files:
        protocol = path.name[: -len("_claims.csv")]
        board = f"`leaderboards/{protocol}.md`"
        try:
            frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
        except (OSError, ValueError) as exc:
            raise BiobenchError(f"{path}: unreadable claims CSV ({exc})") from exc
        if frame.empty:
            lines.append(f"- `{protocol}` ({board}): makes no claims.")
        elif "method" not in frame.columns:
            lines.append(
                f"- `{protocol}` ({board}): its {len(frame)} claim(s) were tested by an older "
                "biobench (a t test over seeds alone); not quoted until `make leaderboards` "
                "rebuilds them."
            )
        else:
            lines.append(f"- `{protocol}` ({board}):")
            lines += [f"  - {_sentence(row)}" for _, row in frame.iterrows()]
    return "\n".join(lines) + "\n"


def _split(text: str, readme: Path) -> tuple[str, str, str]:
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        raise BiobenchError(f"{readme}: no results section (the lines {BEGIN!r} ... {END!r})")
    return text[: start + len(BEGIN)], text[start + len(BEGIN) : end], text[end:]


def check(readme: Path, output: Path) -> str | None:
    """None when ``readme``'s results section is the one ``output``'s CSVs give; else why."""
    _, body, _ = _split(Path(readme).read_text(encoding="utf-8"), readme)
    if body.strip() != results_section(output).strip():
        return (
            f"{readme}: the results section differs from {output}/*_claims.csv; regenerate it "
            "with 'python -m biobench.leaderboard.readme --write README.md'"
        )
    return None


def update(readme: Path, output: Path) -> bool:
    """Rewrite ``readme``'s results section from ``output``'s CSVs; True when it changed."""
    text = Path(readme).read_text(encoding="utf-8")
    head, body, tail = _split(text, readme)
    new = f"{head}\n\n{results_section(output)}\n{tail}"
    if new == text:
        return False
    write_text(Path(readme), new)
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m biobench.leaderboard.readme",
        description="Check or rewrite README.md's results section from the claims CSVs.",
    )
    parser.add_argument("--output", type=Path, default=Path("leaderboards"))
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", type=Path, metavar="README", help="rewrite its section")
    action.add_argument("--check", type=Path, metavar="README", help="exit 1 when it differs")
    args = parser.parse_args(argv)
    try:
        if args.write is not None:
            changed = update(args.write, args.output)
            print(f"{args.write}: results section {'rewritten' if changed else 'unchanged'}")
            return 0
        problem = check(args.check, args.output)
    except BiobenchError as exc:
        print(f"biobench: error: {exc}", file=sys.stderr)
        return 2
    if problem:
        print(f"biobench: error: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
