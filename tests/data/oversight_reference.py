#!/usr/bin/env python3
"""Independent reference for the adverse-impact report (SPEC §11).

Reads the inputs of every case in oversight_cases.json and (re)writes each
case's "expected" outputs, computed here with exact rational arithmetic
(fractions.Fraction, math.comb) and hashlib from the standard library only —
never from the Rust code. tests/oversight_examples.rs compares the Rust
implementation to these numbers.

    python3 tests/data/oversight_reference.py          # rewrite expected outputs
    python3 tests/data/oversight_reference.py --check  # fail if they are stale
"""

import hashlib
import json
import math
import sys
from fractions import Fraction
from pathlib import Path

CASES = Path(__file__).with_name("oversight_cases.json")
MIN_REPORTED_GROUP = 5
FOUR_FIFTHS = Fraction(4, 5)
# A table counts as at most as likely as the observed one when its
# probability is at most the observed one's times 1 + 1e-7.
RELATIVE_TOLERANCE = Fraction(1, 10**7)


def fisher_two_sided(a, b, c, d):
    """Exact: every table with the margins of [[a, b], [c, d]]."""
    row, column, total = a + b, a + c, a + b + c + d

    # Probabilities share the denominator comb(total, row): compare numerators.
    def weight(x):
        return math.comb(column, x) * math.comb(total - column, row - x)

    observed = weight(a) * (1 + RELATIVE_TOLERANCE)
    lowest, highest = max(0, row - (total - column)), min(row, column)
    weights = (weight(x) for x in range(lowest, highest + 1))
    included = sum(w for w in weights if w <= observed)
    return float(min(Fraction(included, math.comb(total, row)), Fraction(1)))


def impact(runs):
    groups = {}
    for group, band, readiness, count in runs:
        tally = groups.setdefault(group, {"n": 0, "ready": 0, "readiness": Fraction(0)})
        tally["n"] += count
        tally["ready"] += count if band == "READY" else 0
        tally["readiness"] += count * Fraction(readiness)

    large = [g for g in groups if groups[g]["n"] >= MIN_REPORTED_GROUP]
    # Highest rate, then the larger group, then the label that sorts first.
    reference = min(large, default=None, key=lambda g: (
        -Fraction(groups[g]["ready"], groups[g]["n"]), -groups[g]["n"], g.encode()))

    report = []
    for group in sorted(groups, key=str.encode):
        tally = groups[group]
        n, ready = tally["n"], tally["ready"]
        figures = None
        if reference is not None and n >= MIN_REPORTED_GROUP:
            n_ref, ready_ref = groups[reference]["n"], groups[reference]["ready"]
            rate, reference_rate = Fraction(ready, n), Fraction(ready_ref, n_ref)
            ratio = rate / reference_rate if reference_rate > 0 else None
            figures = {
                "ready": ready,
                "rate": float(rate),
                "mean_readiness": float(tally["readiness"] / n),
                "impact_ratio": None if ratio is None else float(ratio),
                "below_four_fifths": ratio is not None and ratio < FOUR_FIFTHS,
                "fisher_p": fisher_two_sided(ready, n - ready, ready_ref, n_ref - ready_ref),
            }
        report.append({"group": group, "n": n, "figures": figures})
    return {"reference_group": reference, "groups": report}


def digest(labels):
    lines = sorted(f"{subject}\t{group}\n".encode() for subject, group in labels)
    return hashlib.sha256(b"".join(lines)).hexdigest()


def main():
    data = json.loads(CASES.read_text())
    before = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    for case in data["fisher"]:
        case["expected"] = fisher_two_sided(*case["table"])
    for case in data["impact"]:
        case["expected"] = impact(case["runs"])
    for case in data["digest"]:
        case["expected"] = digest(case["labels"])
    after = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    if "--check" in sys.argv[1:]:
        sys.exit(0 if before == after else "oversight_cases.json is stale: rerun oversight_reference.py")
    CASES.write_text(after)


if __name__ == "__main__":
    main()
