"""bench/rehearsal.py: the stages inside `ra2 run` are split from its log, and a rehearsal resumes."""

import json
from datetime import datetime

import pytest
import rehearsal


def test_split_run_times_each_stage_from_the_log_and_its_memory_from_the_samples(tmp_path):
    log = tmp_path / "run.log"
    log.write_text("\n".join([
        "10:00:00 ra2 INFO ra2 run command=run train=a",
        "10:00:02 ra2.pipeline INFO detectors: copied from weights/detectors",
        "10:00:03 ra2.pipeline INFO detecting the joints of 6 training patients' films and cutting their crops",
        "noise without a time",
        "10:00:13 ra2.pipeline INFO training the regressor ensembles (profile smoke: 2 folds) on 72 crops",
        "10:00:40 ra2.run INFO wrote model predictions out/predictions.csv",
    ]))
    day = "2026-12-04"
    t = lambda hms: datetime.strptime(f"{day} {hms}", "%Y-%m-%d %H:%M:%S").timestamp()  # noqa: E731
    samples = [(t("10:00:01"), 100.0), (t("10:00:08"), 300.0), (t("10:00:20"), 500.0), (t("10:00:35"), 700.0),
               (t("10:00:41"), 650.0)]
    out = rehearsal.split_run(log, samples, day, predict_seconds=10.0)
    assert list(out) == ["set-up and fallback", "detectors", "detect training films", "train regressors",
                         "predict test films", "write outputs"]
    assert [out[k]["seconds"] for k in out] == [2.0, 1.0, 10.0, 17.0, 10.0, 1.0]
    assert out["detect training films"]["peak_rss_mb"] == 300.0
    assert out["predict test films"]["peak_rss_mb"] == 700.0  # 10:00:30 - 10:00:40


@pytest.mark.thorough
def test_a_small_rehearsal_runs_every_stage_records_them_and_resumes(tmp_path):
    args = ["--out", str(tmp_path), "--train-patients", "6", "--test-patients", "3", "--size-scale", "0.35",
            "--profile", "smoke", "--resamples", "20", "--seed", "11"]
    assert rehearsal.main(args) == 0
    record = json.loads((tmp_path / "rehearsal.json").read_text())
    assert list(record["stages"]) == ["phantom", "run", "evaluate"]
    run = record["stages"]["run"]
    assert run["peak_rss_mb"] > 200 and run["seconds_per_test_patient"] > 0
    assert set(run["inside"]) >= {"detect training films", "train regressors", "predict test films"}
    assert sum(r["seconds"] for r in run["inside"].values()) <= run["seconds"] + 2
    assert (tmp_path / "output" / "predictions.csv").is_file() and "official" in record["metrics"]
    (tmp_path / "run.log").write_text("stale")  # a resumed rehearsal runs no stage again
    assert rehearsal.main(args) == 0
    assert (tmp_path / "run.log").read_text() == "stale"
    with pytest.raises(SystemExit, match="other settings"):
        rehearsal.main(args[:-2] + ["--seed", "12"])
