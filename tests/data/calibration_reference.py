#!/usr/bin/env python3
"""Independent reference for rater calibration (SPEC §10).

Writes calibration_cases.json: the inputs of every case below and, for each,
the expected per-rater b_r, k_r, omega_r, overlap_r, se_r and the residual
scale s. The leniencies come from a direct solve of the full normal equations
of L = sum_i w_i (y_i - theta_c - b_r)^2 + lambda sum_r b_r^2 in (theta, b)
jointly, by Gaussian elimination in exact rational arithmetic (fractions):

    W_c theta_c + sum_r B_cr b_r             = sum_{i in c} w_i y_i   (each cell c)
    sum_c B_cr theta_c + (omega_r + lambda) b_r = sum_{i by r} w_i y_i   (each rater r)

with B_cr the weight of r's ratings of c. Levels and confidences are taken as
the exact values of their binary floats, so the only rounding is the final
conversion of each number to a float. The Rust estimator eliminates theta and
iterates instead; tests/calibration_examples.rs compares it to these numbers
within 1e-9. Standard library only.

    python3 tests/data/calibration_reference.py          # rewrite the cases
    python3 tests/data/calibration_reference.py --check  # fail if they are stale
"""

import json
import math
import sys
from fractions import Fraction
from pathlib import Path

CASES = Path(__file__).with_name("calibration_cases.json")


def rating(subject, rater, level, confidence=1.0, competency="system_design"):
    return {"subject_id": subject, "competency_id": competency, "rater_id": rater,
            "level": level, "confidence": confidence}


def lcg(seed):
    """Park-Miller minimal standard generator: reproducible in any language."""
    state = seed
    while True:
        state = state * 48271 % 2147483647
        yield state


def generated_case():
    """Eight raters, twelve subjects, two competencies, overlapping panels of
    two or three raters, leniencies -0.6..+0.6, levels rounded to halves."""
    numbers = lcg(20250630)
    leniency = {f"r{k}": (k - 3.5) * 0.17 for k in range(8)}
    ratings = []
    for s in range(12):
        truth = 1.5 + (next(numbers) % 7) * 0.5
        panel = sorted({f"r{(s + j * 3) % 8}" for j in range(2 + next(numbers) % 2)})
        for competency in ("delivery", "system_design"):
            for rater in panel:
                noise = ((next(numbers) % 9) - 4) * 0.125
                level = min(5.0, max(1.0, round((truth + leniency[rater] + noise) * 2) / 2))
                confidence = (1 + next(numbers) % 10) / 10
                ratings.append(rating(f"s{s:02}", rater, level, confidence, competency))
    return ratings


def definitions():
    return [
        {
            "name": "no_ratings",
            "description": "nothing to estimate: no raters, s = 0.",
            "rater_prior_strength": 5.0,
            "ratings": [],
        },
        {
            "name": "two_raters_fully_crossed",
            "description": "a rates both people one level above b. By hand: g_a = 1, "
                           "L_aa = 1, L_ab = -1, so (5 + 1) b_a - b_b = 1 with b_b = -b_a: "
                           "b_a = 1/7, b_b = -1/7.",
            "rater_prior_strength": 5.0,
            "ratings": [rating("alice", "a", 4.0), rating("alice", "b", 3.0),
                        rating("bob", "a", 3.0), rating("bob", "b", 2.0)],
        },
        {
            "name": "isolated_rater_gets_zero",
            "description": "z rates a person nobody else rates: b_z = 0 and overlap 0, "
                           "while a and b, who share two cells, split their difference.",
            "rater_prior_strength": 5.0,
            "ratings": [rating("alice", "a", 5.0), rating("alice", "b", 3.0, 0.5),
                        rating("bob", "a", 4.0, 0.8), rating("bob", "b", 3.5),
                        rating("carol", "z", 1.0), rating("carol", "z", 2.0, 0.3)],
        },
        {
            "name": "one_rater_only",
            "description": "a single rater shares no cell with anyone: b = 0; s is the "
                           "spread of repeated ratings within a cell.",
            "rater_prior_strength": 5.0,
            "ratings": [rating("alice", "a", 4.0), rating("alice", "a", 3.0, 0.5),
                        rating("bob", "a", 2.0)],
        },
        {
            "name": "all_weight_on_one_shared_cell",
            "description": "m rates only alice, four times; the others rate alice and "
                           "several more people. Small lambda lets m's estimate follow "
                           "the one cell closely.",
            "rater_prior_strength": 0.5,
            "ratings": [rating("alice", "m", 5.0), rating("alice", "m", 5.0, 0.9),
                        rating("alice", "m", 4.5, 0.6), rating("alice", "m", 5.0, 0.2),
                        rating("alice", "p", 3.0), rating("alice", "q", 3.5, 0.7),
                        rating("bob", "p", 2.5), rating("bob", "q", 3.0),
                        rating("carol", "p", 4.0, 0.4), rating("carol", "q", 4.5, 0.9),
                        rating("dan", "q", 1.5)],
        },
        {
            "name": "weak_chain_small_lambda",
            "description": "five raters linked in a chain, each sharing one person with "
                           "the next and each two levels above the next: with lambda = "
                           "0.05 the leniencies spread far, the slow case for alternating "
                           "updates.",
            "rater_prior_strength": 0.05,
            "ratings": [r for k in range(4) for r in (
                rating(f"s{k}", f"r{k}", 5.0 - k * 0.5, 0.9),
                rating(f"s{k}", f"r{k + 1}", 3.0 - k * 0.5, 0.6),
                rating(f"own{k}", f"r{k}", 3.0, 1.0))],
        },
        {
            "name": "two_separate_groups",
            "description": "raters a, b share people; c, d share another person on two "
                           "competencies. Nothing links the groups, so only the prior "
                           "fixes each group's level: each group's leniencies sum to 0.",
            "rater_prior_strength": 2.0,
            "ratings": [rating("s1", "a", 4.0), rating("s1", "b", 3.0, 0.5),
                        rating("s2", "a", 3.0, 0.8), rating("s2", "b", 3.0),
                        rating("s3", "c", 2.0), rating("s3", "d", 4.5),
                        rating("s3", "d", 4.0, 0.7, "delivery"),
                        rating("s3", "c", 1.0, 0.7, "delivery")],
        },
        {
            "name": "generated_panels",
            "description": " ".join(generated_case.__doc__.split()),
            "rater_prior_strength": 5.0,
            "ratings": generated_case(),
        },
    ]


def solve(matrix, rhs):
    """Gaussian elimination with exact fractions (the system is positive
    definite, so no pivot is ever 0)."""
    n = len(rhs)
    a = [row[:] + [rhs[i]] for i, row in enumerate(matrix)]
    for k in range(n):
        for i in range(k + 1, n):
            if a[i][k]:
                f = a[i][k] / a[k][k]
                for j in range(k, n + 1):
                    a[i][j] -= f * a[k][j]
    x = [Fraction(0)] * n
    for i in reversed(range(n)):
        x[i] = (a[i][n] - sum(a[i][j] * x[j] for j in range(i + 1, n))) / a[i][i]
    return x


def expected(case):
    lam = Fraction(case["rater_prior_strength"])
    rows = [((r["subject_id"], r["competency_id"]), r["rater_id"],
             Fraction(r["level"]), Fraction(r["confidence"])) for r in case["ratings"]]
    cells = sorted({c for c, _, _, _ in rows})
    raters = sorted({r for _, r, _, _ in rows})
    ci = {c: k for k, c in enumerate(cells)}
    ri = {r: len(cells) + k for k, r in enumerate(raters)}
    n = len(cells) + len(raters)
    matrix = [[Fraction(0)] * n for _ in range(n)]
    rhs = [Fraction(0)] * n
    for c, r, y, w in rows:
        i, j = ci[c], ri[r]
        matrix[i][i] += w
        matrix[j][j] += w
        matrix[i][j] += w
        matrix[j][i] += w
        rhs[i] += w * y
        rhs[j] += w * y
    for r in raters:
        matrix[ri[r]][ri[r]] += lam
    x = solve(matrix, rhs)
    residual = sum(w * (y - x[ci[c]] - x[ri[r]]) ** 2 for c, r, y, w in rows)
    total = sum(w for _, _, _, w in rows)
    s = math.sqrt(residual / total) if rows else 0.0
    raters_of = {}
    for c, r, _, _ in rows:
        raters_of.setdefault(c, set()).add(r)
    effects = []
    for r in raters:
        omega = sum(w for _, rr, _, w in rows if rr == r)
        effects.append({
            "rater_id": r,
            "leniency": float(x[ri[r]]),
            "ratings": sum(1 for _, rr, _, _ in rows if rr == r),
            "weight": float(omega),
            "overlap": sum(1 for c, rs in raters_of.items() if r in rs and len(rs) > 1),
            "standard_error": s / math.sqrt(float(lam + omega)),
        })
    return {"ratings": len(rows), "cells": len(cells),
            "subjects": len({c[0] for c in cells}),
            "residual_scale": s, "raters": effects}


def main():
    suite = {
        "about": "Worked calibration cases (SPEC §10). Inputs and expected outputs are "
                 "written by tests/data/calibration_reference.py: a stdlib-only direct "
                 "solve of the full normal equations in (theta, b) with exact fractions, "
                 "never the Rust estimator. Rerun it after editing a case; "
                 "tests/calibration_examples.rs compares the estimator to it within 1e-9.",
        "cases": [{**case, "expected": expected(case)} for case in definitions()],
    }
    text = json.dumps(suite, indent=2, ensure_ascii=False) + "\n"
    if "--check" in sys.argv:
        if CASES.read_text() != text:
            sys.exit(f"{CASES} is stale: rerun {Path(__file__).name}")
    else:
        CASES.write_text(text)


if __name__ == "__main__":
    main()
