#!/usr/bin/env python3
"""CI's demo gate: the demo's model must beat the training-mean baseline by at least 20% on each of SC1, SC2 and
SC3 (lower is better; gain = 1 - model / baseline), read from the ``scores.json`` that ``ra2 demo`` writes into
its output folder (``{"model": {"sc1": ...}, "baseline": {"sc1": ...}, ...}``). A missing file, a missing or NA
score is a failure too. Only CI runs this (``.ci/run``); the user's ``make demo`` reports its gains and passes.

    python3 .ci/demo_gate.py [demo_out/scores.json] [--min-gain 0.20]

Exit 0 when every score clears the gate, else 1 with one line per failing score.
"""

import argparse
import json
import math
import sys
from pathlib import Path

SCORES = ("sc1", "sc2", "sc3")


def failures(doc: dict, min_gain: float) -> tuple[list[str], list[str]]:
    """(lines for the scores that pass, lines for those that fail)."""
    ok, bad = [], []
    for key in SCORES:
        model = (doc.get("model") or {}).get(key)
        base = (doc.get("baseline") or {}).get(key)
        if not all(isinstance(v, (int, float)) and math.isfinite(v) for v in (model, base)) or base <= 0:
            bad.append(f"{key.upper()}: no usable score (model {model!r}, baseline {base!r})")
            continue
        gain = 1.0 - model / base
        line = f"{key.upper()}: model {model:.3f}, baseline {base:.3f}, better by {gain:.1%} (gate {min_gain:.0%})"
        (ok if gain >= min_gain else bad).append(line)
    return ok, bad


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("scores", nargs="?", default="demo_out/scores.json")
    ap.add_argument("--min-gain", type=float, default=0.20)
    args = ap.parse_args(argv)
    path = Path(args.scores)
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        print(f"demo gate: cannot read {path}: {e}", file=sys.stderr)
        return 1
    ok, bad = failures(doc, args.min_gain)
    for line in ok:
        print(f"demo gate: pass {line}")
    for line in bad:
        print(f"demo gate: FAIL {line}", file=sys.stderr)
    if bad:
        print(f"demo gate: the demo's model is not {args.min_gain:.0%} better than the training-mean baseline "
              f"on every score ({path})", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
