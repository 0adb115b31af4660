"""A rehearsal of the real job: a phantom challenge at the challenge's size through ``ra2 run`` (not a test).

    python bench/rehearsal.py --out /tmp/rehearsal                     # 367 / 188 patients, profile cpu
    python bench/rehearsal.py --out /tmp/r --train-patients 40 --test-patients 20 --size-scale 0.35   # minutes

Three stages, each in its own process, each skipped when its output is already there (so a rehearsal that was
stopped resumes where it stopped; inside ``ra2 run`` the work folder keeps every finished ensemble member, which
a new ``ra2 run`` with the same data and profile reuses):

1. ``ra2 phantom``: ``--train-patients`` / ``--test-patients`` patients of seed ``--seed`` (default 7103, a
   seed no recipe was tuned on) at the films' real size range (``--size-scale 1.0``: about 1000-3000 px per
   side) and the phantom's share of patients without damage;
2. ``ra2 run`` exactly as the container's ``run.sh`` calls it (``RA2_PROFILE`` = ``--profile``, default
   ``cpu``; the shipped detectors; train then predict);
3. ``ra2 evaluate`` against the phantom's gold standard with the training means as the baseline (SC1-3 with
   bootstrap intervals).

Every stage's seconds and peak resident memory (the process tree's summed RSS sampled every 0.5 s) are
recorded; inside ``ra2 run`` the log's stage lines (detectors, detecting the training films, training the
regressors, predicting) split the time and the memory samples further. Results: ``OUT/rehearsal.json`` and a
Markdown table on stdout (what ``docs/benchmarks.md`` records).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lines of `ra2 run`'s log that open a stage inside it (the rest of the run belongs to the stage before).
RUN_STAGES = (
    ("set-up and fallback", re.compile(r"ra2 run command=")),
    ("detectors", re.compile(r"ra2\.pipeline INFO detectors: ")),
    ("detect training films", re.compile(r"detecting the joints of \d+ training patients")),
    ("train regressors", re.compile(r"training the regressor ensembles")),
)
PREDICT_DONE = re.compile(r"wrote model predictions")  # prediction began its run_summary seconds before


def tree_rss_mb(pid: int) -> float:
    """Summed resident set size (MiB) of ``pid`` and all its descendants (``/proc``), 0 when it is gone."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
        except (OSError, IndexError, ValueError):
            continue
    total, todo = 0.0, [pid]
    while todo:
        p = todo.pop()
        todo.extend(children.get(p, []))
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
        except OSError:
            continue
    return total


def run_stage(name: str, cmd: list[str], log: Path, env: dict | None = None) -> dict:
    """Run ``cmd`` with stdout and stderr to ``log``; returns seconds, peak tree RSS and the RSS samples
    ``[(unix time, MiB)]``. Raises ``SystemExit`` naming the log when it fails."""
    samples: list[tuple[float, float]] = []
    t0 = time.time()
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})})
        done = threading.Event()

        def sample():
            while not done.is_set():
                samples.append((time.time(), tree_rss_mb(proc.pid)))
                done.wait(0.5)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rc = proc.wait()
        done.set()
        sampler.join()
    if rc != 0:
        raise SystemExit(f"rehearsal: {name} failed (exit {rc}); see {log}")
    return {"seconds": round(time.time() - t0, 1), "peak_rss_mb": round(max((m for _, m in samples), default=0), 1),
            "samples": samples}


def split_run(log: Path, samples: list[tuple[float, float]], day: str, predict_seconds: float) -> dict:
    """Seconds and peak RSS of each stage inside ``ra2 run``, from the log's ``HH:MM:SS`` stage lines; the
    prediction (no line of its own) began ``predict_seconds`` (run_summary.json) before the predictions were
    written, and the time between it and the last training line is the context stage and saving."""
    marks = []
    for line in log.read_text(errors="replace").splitlines():
        m = re.match(r"(\d\d:\d\d:\d\d) ", line)
        if not m:
            continue
        when = datetime.strptime(f"{day} {m.group(1)}", "%Y-%m-%d %H:%M:%S").timestamp()
        for stage, pattern in RUN_STAGES:
            if pattern.search(line) and stage not in (s for s, _ in marks):
                marks.append((stage, when))
        if PREDICT_DONE.search(line):
            marks.append(("predict test films", when - predict_seconds))
            marks.append(("write outputs", when))
    if not marks:
        return {}
    end = samples[-1][0] if samples else marks[-1][1]
    out = {}
    for i, (stage, start) in enumerate(marks):
        stop = marks[i + 1][1] if i + 1 < len(marks) else end
        inside = [mb for t, mb in samples if start - 1 <= t <= stop + 1]
        out[stage] = {"seconds": round(stop - start, 1), "peak_rss_mb": round(max(inside, default=0.0), 1)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--train-patients", type=int, default=367)
    parser.add_argument("--test-patients", type=int, default=188)
    parser.add_argument("--seed", type=int, default=7103)
    parser.add_argument("--size-scale", type=float, nargs="+", default=[1.0])
    parser.add_argument("--profile", default="cpu")
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args(argv)

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    py = [sys.executable, "-m", "ra2"]
    env = {"PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    record_path = out / "rehearsal.json"
    record = json.loads(record_path.read_text()) if record_path.exists() else {}
    wanted = {"train_patients": args.train_patients, "test_patients": args.test_patients, "seed": args.seed,
              "size_scale": args.size_scale, "profile": args.profile}
    if record.get("settings", wanted) != wanted:
        raise SystemExit(f"rehearsal: {out} holds a rehearsal with other settings ({record['settings']}); "
                         "use another --out")
    record["settings"] = wanted
    record.setdefault("stages", {})

    def save():
        tmp = record_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record, indent=2) + "\n")
        os.replace(tmp, record_path)

    phantom = out / "phantom"
    if "phantom" not in record["stages"]:
        res = run_stage("phantom", py + ["phantom", "--out", str(phantom), "--train-patients",
                                         str(args.train_patients), "--test-patients", str(args.test_patients),
                                         "--seed", str(args.seed), "--size-scale", *map(str, args.size_scale)],
                        out / "phantom.log", env)
        res.pop("samples")
        record["stages"]["phantom"] = res
        save()

    output = out / "output"
    if "run" not in record["stages"]:
        day = datetime.now().strftime("%Y-%m-%d")
        res = run_stage("ra2 run", py + ["run", "--train", str(phantom / "train"), "--test", str(phantom / "test"),
                                         "--output", str(output), "--work", str(out / "work")],
                        out / "run.log", {**env, "RA2_PROFILE": args.profile})
        summary = json.loads((output / "run_summary.json").read_text())
        res["inside"] = split_run(out / "run.log", res.pop("samples"), day, summary["model"]["seconds"]["prediction"])
        res["run_summary_seconds"] = summary["model"]["seconds"]
        res["training_seconds"] = summary["model"]["training"]["seconds"]
        res["peak_memory_mb_reported"] = summary.get("peak_memory_mb")
        res["seconds_per_test_patient"] = round(summary["model"]["seconds"]["prediction"] / args.test_patients, 2)
        res["box_sources"] = summary["model"]["prediction"].get("box_sources")
        res["reused_models"] = summary["model"]["training"].get("reused")
        record["stages"]["run"] = res
        save()

    if "evaluate" not in record["stages"]:
        res = run_stage("ra2 evaluate", py + ["evaluate", "--predictions", str(output / "predictions.csv"),
                                              "--gold", str(phantom / "gold.csv"), "--baseline",
                                              str(phantom / "train" / "training.csv"), "--out", str(out / "evaluation"),
                                              "--resamples", str(args.resamples)],
                        out / "evaluate.log", env)
        res.pop("samples")
        record["stages"]["evaluate"] = res
        record["metrics"] = json.loads((out / "evaluation" / "metrics.json").read_text())
        save()

    print(table(record))
    return 0


def table(record: dict) -> str:
    """The Markdown rows docs/benchmarks.md records: stage, seconds, peak RSS."""
    rows = ["| stage | seconds | peak RSS (MiB) |", "|---|---|---|"]
    for name, res in record["stages"].items():
        rows.append(f"| {name} | {res['seconds']:.0f} | {res['peak_rss_mb']:.0f} |")
        for inner, r in res.get("inside", {}).items():
            rows.append(f"| - {inner} | {r['seconds']:.0f} | {r['peak_rss_mb']:.0f} |")
    run = record["stages"].get("run")
    if run:
        rows.append(f"\nseconds per test patient (prediction): {run['seconds_per_test_patient']}")
    official = record.get("metrics", {}).get("official", {})
    if official:
        rows += ["", "| score | model [95% interval] | baseline | better than the baseline |", "|---|---|---|---|"]
        for sc in ("sc1", "sc2", "sc3"):
            model, base = official[sc]["model"], official[sc]["baseline"]
            if model["value"] is None or base["value"] is None:
                rows.append(f"| {sc.upper()} | not defined (too few patients with damage) | | |")
                continue
            gain = 100 * (1 - model["value"] / base["value"]) if base["value"] else float("nan")
            rows.append(f"| {sc.upper()} | {model['value']:.3f} [{model['low']:.3f}, {model['high']:.3f}] | "
                        f"{base['value']:.3f} | {gain:.1f}% |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.exit(main())
