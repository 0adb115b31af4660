"""What a reader's check of the flagged joints is worth: a real run (`ra2 demo` with the smoke regressors on a tiny
phantom, or the run folder named by ``RA2_REVIEW_RUN``, e.g. ``demo_out`` of `make demo`), its flagged joints set
to their gold scores by typing them into the page in headless Chromium, then the official SC1-3 of
``predictions.csv`` and ``reviewed.csv`` against the gold standard, printed (``pytest -s``). Thorough tier."""

from __future__ import annotations

import os
import threading
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from review_browser import chrome, keys, load, settle, wait_for

from ra2 import contract as C
from ra2.metrics import score_files
from ra2.review.run import open_run
from ra2.review.server import ReviewApp, make_server
from ra2.review.store import REVIEWED_FILE, ReviewStore


def _run_folder(tmp_path) -> tuple[Path, Path, Path, str]:
    given = os.environ.get("RA2_REVIEW_RUN")
    if given:
        run = Path(given)
        return run, run / "phantom" / "test", run / "phantom" / "gold.csv", f"{run} (RA2_REVIEW_RUN)"
    from ra2.cli import main

    run = tmp_path / "demo"
    assert main(["demo", "--out", str(run), "--train-patients", "3", "--test-patients", "4", "--size-scale", "0.15",
                 "--profile", "smoke"]) == 0
    return run, run / "phantom" / "test", run / "phantom" / "gold.csv", "ra2 demo --profile smoke, 3 + 4 patients"


@pytest.mark.thorough
def test_correcting_the_flagged_joints_to_gold_through_the_page_lowers_sc(tmp_path, capsys):
    from selenium.webdriver.common.keys import Keys

    run, films, gold, what = _run_folder(tmp_path)
    (run / "review_log.jsonl").unlink(missing_ok=True)
    store = ReviewStore(open_run(run, films, gold))
    server = make_server(ReviewApp(store, "gold-script"), 0)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/"
    typed = 0
    try:
        with chrome() as d:
            load(d, url)
            n_patients = d.execute_script("return S.app.patients.length")
            for p in range(n_patients):
                if p:
                    keys(d, "n")
                    wait_for(d, f"S.pi === {p} && S.patient.patient === S.app.patients[{p}].patient")
                flagged = d.execute_script("return S.patient.joints.filter((j) => j.flagged).length")
                for i in range(flagged):
                    gold_text = d.execute_script(
                        f"return document.querySelectorAll('#joints tbody tr')[{i}].querySelector('.gold-col')"
                        f".textContent")
                    keys(d, *str(int(gold_text)), Keys.ENTER)
                    settle(d, typed + 1)
                    typed += 1
            progress = d.execute_script("return S.app.progress")
    finally:
        server.shutdown()
        server.server_close()
    assert typed == progress["flagged"] == progress["flagged_reviewed"] == store.run.flagged.sum()
    assert (store.values[store.run.flagged] == store.run.gold[store.run.flagged]).all()
    assert (store.values[~store.run.flagged] == store.run.joint_values[~store.run.flagged]).all()
    before = score_files(run / "predictions.csv", gold)
    after = score_files(run / REVIEWED_FILE, gold)
    with capsys.disabled():
        kinds = Counter(C.SCORE_BY_COLUMN[C.JOINT_COLUMNS[c]].dataset for c in np.nonzero(store.run.flagged)[1])
        changed = int((store.run.joint_values[store.run.flagged] != store.run.gold[store.run.flagged]).sum())
        print(f"\n[review] {what}: {len(store.run.patient_ids)} held-out patients, {typed} flagged joints "
              f"(of {store.run.flagged.size}; {dict(sorted(kinds.items()))}) set to gold through the page, "
              f"{changed} of them differed from it")
        for key in ("sc1", "sc2", "sc3"):
            b, a = before[key], after[key]
            change = "NA" if b is None or a is None else f"{a - b:+.4f} ({100 * (a - b) / b:+.1f}%)"
            print(f"[review] {key.upper()}: predictions {b} -> reviewed {a}: {change}")
    for key in ("sc2", "sc3"):
        if before[key] is not None:
            assert after[key] <= before[key] + 1e-12
    assert any(after[k] < before[k] for k in ("sc1", "sc2", "sc3") if before[k] is not None and after[k] is not None)
