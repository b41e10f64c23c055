#!/usr/bin/env python3
"""Independent reference for the scoring engine (SPEC §4 and §5).

Reads the inputs of every case in scoring_cases.json and (re)writes each case's
"expected" outputs, computed here straight from the SPEC formulas with the
standard library only (math.erfc, math.fsum, datetime) — never from the Rust
engine's output. tests/scoring_examples.rs compares the engine to these numbers.

    python3 tests/data/scoring_reference.py          # rewrite expected outputs
    python3 tests/data/scoring_reference.py --check  # fail if they are stale
"""

import json
import math
import sys
from datetime import datetime, timedelta
from pathlib import Path

CASES = Path(__file__).with_name("scoring_cases.json")
DEFAULT_POLICY = {
    "half_life_days": 365.0,
    "source_weights": {"self": 0.5, "peer": 0.8, "manager": 1.0,
                       "direct_report": 0.7, "artifact": 1.0, "calibration": 1.5},
    "prior_mean": 3.0, "prior_strength": 1.0, "sigma": 1.0, "min_evidence": 0.5,
}
TARGETS = ("0.5", "0.8")
MAX_PLANNED = 1000


def timestamp(text):
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def policy_of(case):
    override = case.get("policy", {})
    policy = {**DEFAULT_POLICY, **override}
    policy["source_weights"] = {**DEFAULT_POLICY["source_weights"],
                                **override.get("source_weights", {})}
    return policy


def phi(z):
    return 0.5 * math.erfc(-z / math.sqrt(2.0))


def posterior(n, sum_wx, expected, policy):
    n0, mu0, sigma = policy["prior_strength"], policy["prior_mean"], policy["sigma"]
    m = (n0 * mu0 + sum_wx) / (n0 + n)
    sd = sigma / math.sqrt(n0 + n)
    return m, sd, phi((m - (expected - 0.5)) / sd)


def needed(n, sum_wx, expected, weight, policy, target):
    """Smallest k of new observations (level E, age 0, confidence 1): linear scan."""
    for k in range(MAX_PLANNED + 1):
        if posterior(n + k * weight, sum_wx + k * (weight * expected), expected, policy)[2] >= target:
            return k
    return None


def competency(expectation, evidence, policy, as_of):
    cid, expected = expectation["competency_id"], expectation["expected_level"]
    rows = []  # (uuid, w, x) of every evidence for this competency up to as_of
    for e in evidence:
        observed_at = timestamp(e["observed_at"])
        if e["competency_id"] != cid or observed_at > as_of:
            continue
        age_days = (as_of - observed_at) / timedelta(days=1)
        w = (policy["source_weights"][e["source"]] * e["confidence"]
             * 0.5 ** (age_days / policy["half_life_days"]))
        rows.append((e["id"], w, e["level"]))
    rows.sort()
    n = math.fsum(w for _, w, _ in rows)
    sum_wx = math.fsum(w * x for _, w, x in rows)
    m, sd, p = posterior(n, sum_wx, expected, policy)
    if n > 0:
        mean = sum_wx / n
        disagreement = math.sqrt(math.fsum(w * (x - mean) ** 2 for _, w, x in rows) / n)
    else:
        disagreement = 0.0
    if n < policy["min_evidence"]:
        status = "INSUFFICIENT_EVIDENCE"
    elif m >= expected + 0.5:
        status = "EXCEEDS"
    elif m >= expected - 0.5:
        status = "MEETS"
    else:
        status = "BELOW"
    return {
        "competency_id": cid, "n": n, "weighted_level_sum": sum_wx, "m": m, "sd": sd,
        "p": p, "gap": max(0.0, expected - 0.5 - m), "disagreement": disagreement,
        "status": status, "conflicting": disagreement > 1.0,
        "contributions": [{"evidence_id": i, "weight": w} for i, w, _ in rows],
        "observations_needed": {
            source: {t: needed(n, sum_wx, expected, weight, policy, float(t)) for t in TARGETS}
            for source, weight in policy["source_weights"].items()
        },
    }


def expected_outputs(case):
    policy, as_of = policy_of(case), timestamp(case["as_of"])
    rubric = case["rubric"]
    scores = [competency(c, case["evidence"], policy, as_of) for c in rubric]
    total = math.fsum(c["weight"] for c in rubric)
    readiness = math.fsum(c["weight"] * s["p"] for c, s in zip(rubric, scores)) / total
    coverage = math.fsum(c["weight"] for c, s in zip(rubric, scores)
                         if s["n"] >= policy["min_evidence"]) / total
    critical_met = all(s["p"] >= 0.5 for c, s in zip(rubric, scores) if c["critical"])
    if coverage < 0.5:
        band = "INSUFFICIENT_EVIDENCE"
    elif readiness >= 0.75 and critical_met:
        band = "READY"
    elif readiness >= 0.4:
        band = "DEVELOPING"
    else:
        band = "NOT_YET"
    return {"competencies": scores, "readiness": readiness, "coverage": coverage, "band": band}


def main():
    data = json.loads(CASES.read_text())
    before = json.dumps(data, indent=2) + "\n"
    for case in data["cases"]:
        case["expected"] = expected_outputs(case)
    after = json.dumps(data, indent=2) + "\n"
    if "--check" in sys.argv[1:]:
        sys.exit(0 if before == after else "scoring_cases.json is stale: rerun scoring_reference.py")
    CASES.write_text(after)


if __name__ == "__main__":
    main()
