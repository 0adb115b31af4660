"""The checks ``docker/image.sh test`` makes on the container's /output after the organisers' ``docker run``.

    python docker/check_output.py --output OUT --template TEST/template.csv --films N [--log RUN_LOG]

Exit 0 when ``ra2 validate`` accepts ``predictions.csv``, ``run_summary.json`` says the run is ``ok`` with
``predictions_from: model`` from the ``smoke`` profile having read N films, the folder holds exactly the
expected files, and the container's log shows no library reaching for the network; else one line per
problem and exit 1. Run with the host venv's python and ``PYTHONPATH`` at the checkout.
"""

import argparse
import json
import sys
from pathlib import Path

EXPECTED = ["predictions.csv", "run.json", "run_summary.json"]
NETWORK_SIGNS = ["Error fetching version info"]  # albumentations asking PyPI for its version


def problems(output: Path, template: Path, films: int, log: Path | None = None, profile: str = "smoke") -> list[str]:
    from ra2.cli import main

    found = []
    written = sorted(str(p.relative_to(output)) for p in output.rglob("*"))
    if written != EXPECTED:
        found.append(f"{output} holds {written}, expected exactly {EXPECTED}")
    if not (output / "predictions.csv").is_file():
        return found + ["no predictions.csv"]
    if main(["validate", "--predictions", str(output / "predictions.csv"), "--template", str(template)]) != 0:
        found.append("ra2 validate rejected predictions.csv")
    try:
        summary = json.loads((output / "run_summary.json").read_text())
    except (OSError, ValueError) as exc:
        return found + [f"run_summary.json unreadable: {exc}"]
    if summary.get("status") != "ok":
        found.append(f"run_summary.json: status {summary.get('status')!r} ({summary.get('error')})")
    if summary.get("predictions_from") != "model":
        found.append(f"run_summary.json: predictions_from {summary.get('predictions_from')!r}, expected 'model' "
                     f"(model_error: {summary.get('model_error')})")
    model = summary.get("model") or {}
    if model.get("profile") != profile:
        found.append(f"run_summary.json: profile {model.get('profile')!r}, expected {profile!r}")
    read = (model.get("prediction") or {}).get("films_read")
    if read != films:
        found.append(f"run_summary.json: films_read {read}, expected {films}")
    if log is not None:
        text = log.read_text(errors="replace")
        found += [f"{log}: {sign!r}: a library tried the network" for sign in NETWORK_SIGNS if sign in text]
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--output", type=Path, required=True)
    ap.add_argument("--template", type=Path, required=True)
    ap.add_argument("--films", type=int, required=True, help="films the test set has (4 per patient)")
    ap.add_argument("--log", type=Path, help="the container's stdout and stderr")
    args = ap.parse_args(argv)
    found = problems(args.output, args.template, args.films, args.log)
    for line in found:
        print(f"image-test: check failed: {line}", file=sys.stderr)
    if not found:
        summary = json.loads((args.output / "run_summary.json").read_text())
        print(f"image-test: checks passed: predictions.csv valid; run_summary.json: status ok, predictions_from "
              f"model, profile smoke, {args.films} films read (model step {summary['seconds'].get('model')} s); "
              f"/output holds exactly {' '.join(EXPECTED)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
