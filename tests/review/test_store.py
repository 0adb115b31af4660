"""The review's store without a browser: the log and reviewed.csv, restarts, stale writes, refused input leaving
the files untouched, a crash mid-append, and the export read back by `ra2 train`'s training.csv reader and the
annotation importer."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest
from review_run import fake_run

from ra2 import Ra2Error, io
from ra2 import contract as C
from ra2.review.run import flag_cells, open_run
from ra2.review.store import LOG_FILE, REVIEWED_FILE, ReviewError, ReviewStore, hold_folder, moved_totals


@pytest.fixture
def run_dir(phantom, tmp_path):
    return fake_run(phantom, tmp_path / "run")


def _store(phantom, run_dir, gold=True):
    return ReviewStore(open_run(run_dir, phantom / "test", phantom / "gold.csv" if gold else None))


def carpus_of(film):
    """The carpus region's box of an imported hand film (the object without a site), as a one-item list."""
    return [o.box for o in film.objects if o.site_id is None]


def _files(run_dir):
    return {name: (run_dir / name).read_bytes() if (run_dir / name).exists() else None
            for name in (LOG_FILE, REVIEWED_FILE)}


def _score(store, patient, joint, new, old=None, reader="ann"):
    row = store.run.patient_ids.index(patient)
    if old is None:
        old = float(store.values[row, C.JOINT_COLUMNS.index(joint)])
    return store.submit({"kind": "score", "reader": reader, "patient": patient, "joint": joint, "old": old,
                         "new": new})


def test_flags_are_the_top_tenth_by_spread_and_patients_ordered_by_their_worst_joint(phantom, run_dir):
    run = open_run(run_dir, phantom / "test", phantom / "gold.csv")
    n = run.spread.size
    assert run.flagged.sum() == round(0.1 * n)
    assert run.spread[run.flagged].min() >= run.spread[~run.flagged].max()
    order = run.patient_order()
    assert [run.spread[r].max() for r in order] == sorted((run.spread[r].max() for r in order), reverse=True)
    spread = np.array([[np.nan, 1.0], [2.0, 2.0]])
    assert flag_cells(spread, 0.4).tolist() == [[False, False], [True, False]]  # a tie goes to the first cell
    assert not flag_cells(np.full((2, 2), np.nan)).any()


def test_a_correction_is_logged_applied_and_survives_a_restart(phantom, run_dir):
    store = _store(phantom, run_dir)
    pid = store.run.patient_ids[0]
    before = io.read_predictions_csv(run_dir / "predictions.csv")
    event = _score(store, pid, "LH_pip_E__2", 3)
    assert {k: event[k] for k in ("kind", "reader", "patient", "joint", "new")} == {
        "kind": "score", "reader": "ann", "patient": pid, "joint": "LH_pip_E__2", "new": 3}
    logged = [json.loads(line) for line in (run_dir / LOG_FILE).read_text().splitlines()]
    assert logged == [event] and set(event) == {"kind", "reader", "time", "patient", "joint", "old", "new"}
    assert io.validate_predictions(run_dir / REVIEWED_FILE, phantom / "test" / "template.csv") == []
    after = io.read_predictions_csv(run_dir / REVIEWED_FILE)
    old = before.loc[0, "LH_pip_E__2"]
    assert after.loc[0, "LH_pip_E__2"] == 3
    assert after.loc[0, C.OVERALL_EROSION] == pytest.approx(before.loc[0, C.OVERALL_EROSION] + 3 - old)
    assert after.loc[0, C.OVERALL_TOTAL] == pytest.approx(before.loc[0, C.OVERALL_TOTAL] + 3 - old)
    assert after.loc[0, C.OVERALL_NARROWING] == before.loc[0, C.OVERALL_NARROWING]
    assert (after.loc[1, list(C.COLUMNS[1:])] == before.loc[1, list(C.COLUMNS[1:])]).all()
    # the predictions themselves are never touched
    assert io.read_predictions_csv(run_dir / "predictions.csv").equals(before)
    # a restart (a new store on the same folder) finds the correction; reviewed.csv is rebuilt from the log
    (run_dir / REVIEWED_FILE).unlink()
    again = _store(phantom, run_dir)
    assert again.values[0, C.JOINT_COLUMNS.index("LH_pip_E__2")] == 3 and again.progress()["reviewed"] == 1
    assert io.read_predictions_csv(run_dir / REVIEWED_FILE).equals(after)
    # the same joint corrected again: the last score wins; its old value is the previous correction
    _score(again, pid, "LH_pip_E__2", 1, old=3)
    assert io.read_predictions_csv(run_dir / REVIEWED_FILE).loc[0, "LH_pip_E__2"] == 1


@pytest.mark.parametrize("change, status, words", [
    ({"new": 6}, 400, "hand erosion is scored 0-5"),
    ({"new": -1}, 400, "0-5"),
    ({"new": 2.5}, 400, "whole steps"),
    ({"new": True}, 400, "must be a number"),
    ({"new": "3"}, 400, "must be a number"),
    ({"new": float("nan")}, 400, "finite"),
    ({"joint": "LH_pip_E__9"}, 404, "unknown joint"),
    ({"patient": "nobody"}, 404, "unknown patient"),
    ({"reader": ""}, 400, "reader"),
    ({"kind": "erase"}, 400, "unknown action"),
    ({"old": 4.0}, 409, "changed elsewhere"),
])
def test_a_refused_action_is_one_line_and_changes_nothing(phantom, run_dir, change, status, words):
    store = _store(phantom, run_dir)
    pid = store.run.patient_ids[0]
    _score(store, pid, "RH_mcp_E__1", 2)
    kept = _files(run_dir)
    request = {"kind": "score", "reader": "ann", "patient": pid, "joint": "LH_pip_E__2",
               "old": float(store.values[0, C.JOINT_COLUMNS.index("LH_pip_E__2")]), "new": 1}
    request.update(change)
    with pytest.raises(ReviewError) as err:
        store.submit(request)
    assert err.value.status == status and words in str(err.value) and "\n" not in str(err.value)
    assert _files(run_dir) == kept and store.progress()["reviewed"] == 1


def test_two_tabs_with_the_same_old_value_one_wins_the_other_is_refused(phantom, run_dir):
    store = _store(phantom, run_dir)
    pid = store.run.patient_ids[1]
    old = float(store.values[1, C.JOINT_COLUMNS.index("LF_mtp_E__3")])
    results = []

    def tab(new):
        try:
            results.append(_score(store, pid, "LF_mtp_E__3", new, old=old)["new"])
        except ReviewError as exc:
            results.append(exc.status)

    threads = [threading.Thread(target=tab, args=(n,)) for n in (7, 8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2 and results.count(409) == 1  # one tab wins, the other is told
    assert len((run_dir / LOG_FILE).read_text().splitlines()) == 1


def test_a_crash_mid_append_keeps_every_accepted_correction(phantom, run_dir, caplog):
    store = _store(phantom, run_dir)
    pid = store.run.patient_ids[0]
    _score(store, pid, "LH_pip_E__2", 3)
    _score(store, pid, "LH_mcp_J__1", 2)
    with open(run_dir / LOG_FILE, "a") as fh:  # the server died half way through a third line
        fh.write('{"kind":"score","joint":"LH_pip_J__')
    again = _store(phantom, run_dir)
    assert "incomplete last line" in caplog.text
    assert again.progress()["reviewed"] == 2
    _score(again, pid, "RF_mtp_J__1", 4)  # the log goes on cleanly after the cut
    lines = (run_dir / LOG_FILE).read_text().splitlines()
    assert len(lines) == 3 and all(json.loads(line)["kind"] == "score" for line in lines)
    reviewed = io.read_predictions_csv(run_dir / REVIEWED_FILE)
    assert (reviewed.loc[0, "LH_pip_E__2"], reviewed.loc[0, "LH_mcp_J__1"], reviewed.loc[0, "RF_mtp_J__1"]) == (3, 2, 4)
    # a damaged line before the last is not guessed at: one line naming the file and line
    text = (run_dir / LOG_FILE).read_text().splitlines()
    (run_dir / LOG_FILE).write_text("\n".join([text[0], "garbage", text[1]]) + "\n")
    with pytest.raises(Ra2Error, match=r"review_log.jsonl, line 2: not a JSON object"):
        _store(phantom, run_dir)


def test_a_failed_append_is_cut_back_and_a_complete_unterminated_line_is_kept(phantom, run_dir, monkeypatch):
    store = _store(phantom, run_dir)
    pid = store.run.patient_ids[0]
    _score(store, pid, "LH_pip_E__2", 3)
    before = _files(run_dir)
    import ra2.review.store as store_module

    real_fsync = store_module.os.fsync

    def full_disk(fd):  # the log's write fails once it is flushed; the staged CSV is written fine
        if os.readlink(f"/proc/self/fd/{fd}").endswith(LOG_FILE):
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(store_module.os, "fsync", full_disk)
    with pytest.raises(Ra2Error, match="No space left on device"):
        _score(store, pid, "LH_mcp_J__1", 2)
    monkeypatch.undo()
    assert _files(run_dir) == before  # no fragment left for the next line to be glued onto
    assert not list(run_dir.glob(".reviewed.csv*"))  # nor a staged CSV
    _score(store, pid, "LH_mcp_J__1", 2)
    assert [json.loads(x)["joint"] for x in (run_dir / LOG_FILE).read_text().splitlines()] == [
        "LH_pip_E__2", "LH_mcp_J__1"]
    # a log whose last, complete line lost its newline (repaired by hand) keeps that line
    (run_dir / LOG_FILE).write_bytes((run_dir / LOG_FILE).read_bytes().rstrip(b"\n"))
    again = _store(phantom, run_dir)
    assert again.progress()["reviewed"] == 2 and (run_dir / LOG_FILE).read_bytes().endswith(b"}\n")


def test_a_correction_that_would_make_reviewed_csv_invalid_is_refused_before_it_is_logged(phantom, run_dir, tmp_path):
    store = _store(phantom, run_dir)
    pid = store.run.patient_ids[0]
    # The template the review checks against is rewritten on disk under the live server (its first patient
    # dropped): the next reviewed.csv would not match it, so the correction is refused and nothing is logged.
    template = io.read_template_csv(store.run.template_path)
    edited = tmp_path / "template.csv"
    template[template[C.PATIENT_COLUMN].astype(str) != pid].to_csv(edited, index=False)
    store.run.template_path = edited
    before = _files(run_dir)
    with pytest.raises(ReviewError, match=f"would not be valid against {edited}") as err:
        _score(store, pid, "LH_pip_E__2", 1)
    assert err.value.status == 400 and "\n" not in str(err.value)
    assert _files(run_dir) == before and store.progress()["reviewed"] == 0
    assert not list(run_dir.glob(".reviewed.csv*"))


def test_export_reads_the_log_read_only_beside_a_live_server(phantom, run_dir):
    store = _store(phantom, run_dir)
    pid = store.run.patient_ids[0]
    _score(store, pid, "LH_pip_E__2", 3)
    with open(run_dir / LOG_FILE, "a") as fh:  # the live server is half way through its next line
        fh.write('{"kind":"score","joint":"LH_pip_J__')
    before = _files(run_dir)
    stamps = {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()}
    reader = ReviewStore(open_run(run_dir, phantom / "test"), read_only=True)
    assert reader.progress()["reviewed"] == 1 and _files(run_dir) == before  # nothing cut, nothing rebuilt
    assert {p.name: p.stat().st_mtime_ns for p in run_dir.iterdir()} == stamps
    with pytest.raises(Ra2Error, match="read-only"):
        _score(reader, pid, "LH_mcp_J__1", 2)


def test_boxes_marked_wrong_or_drawn_and_bad_boxes_refused(phantom, run_dir):
    store = _store(phantom, run_dir)
    store.film_shape = lambda patient, limb: (100, 80)
    pid = store.run.patient_ids[0]
    store.submit({"kind": "box", "reader": "ann", "patient": pid, "joint": "LH_pip__2", "old": "ok", "new": "wrong"})
    store.submit({"kind": "box", "reader": "ann", "patient": pid, "joint": "LF_mtp__1", "old": "ok",
                  "new": [10, 20, 30, 40]})
    kept = _files(run_dir)
    for new, words in (([10, 20, 5, 40], "not a box"), ([10, 20, 130, 40], "80x100 px"), ("maybe", "must be")):
        with pytest.raises(ReviewError, match=words):
            store.submit({"kind": "box", "reader": "ann", "patient": pid, "joint": "LF_mtp__2", "old": "ok",
                          "new": new})
    with pytest.raises(ReviewError, match="changed elsewhere"):
        store.submit({"kind": "box", "reader": "ann", "patient": pid, "joint": "LH_pip__2", "old": "ok",
                      "new": "ok"})
    assert _files(run_dir) == kept
    assert store.progress()["boxes_marked"] == 2
    assert _store(phantom, run_dir).box_state(pid, "LF_mtp__1") == [10.0, 20.0, 30.0, 40.0]


def test_a_box_drawn_where_the_run_has_none_is_shown_and_can_be_taken_back(phantom, run_dir):
    det = json.loads((run_dir / "detections.json").read_text())
    pid = sorted(det["films"])[0].rsplit("-", 1)[0]
    del det["films"][f"{pid}-LF"]  # the detection of this film failed
    (run_dir / "detections.json").write_text(json.dumps(det))
    store = _store(phantom, run_dir)
    row = store.run.patient_ids.index(pid)
    assert [f["boxes"] for f in store.patient_state(row)["films"] if f["limb"] == "LF"] == [[]]
    store.submit({"kind": "box", "reader": "ann", "patient": pid, "joint": "LF_mtp__1", "old": "ok",
                  "new": [10, 20, 30, 40]})
    lf = next(f for f in _store(phantom, run_dir).patient_state(row)["films"] if f["limb"] == "LF")
    assert lf["boxes"] == [{"site": "LF_mtp__1", "box": [10.0, 20.0, 30.0, 40.0], "source": "drawn",
                            "state": [10.0, 20.0, 30.0, 40.0]}]
    # the page sends the state it shows as "old": the drawn box, so redrawing and taking it back are accepted
    store.submit({"kind": "box", "reader": "ann", "patient": pid, "joint": "LF_mtp__1", "old": lf["boxes"][0]["state"],
                  "new": [12, 20, 30, 40]})
    store.submit({"kind": "box", "reader": "ann", "patient": pid, "joint": "LF_mtp__1", "old": [12, 20, 30, 40],
                  "new": "ok"})
    assert [f["boxes"] for f in store.patient_state(row)["films"] if f["limb"] == "LF"] == [[]]


def test_a_second_server_on_the_same_folder_is_refused(run_dir):
    held = hold_folder(run_dir)
    try:
        with pytest.raises(Ra2Error, match="already being reviewed"):
            hold_folder(run_dir)
    finally:
        held.close()
    hold_folder(run_dir).close()


def test_export_feeds_the_training_csv_reader_and_the_annotation_importer(phantom, run_dir, tmp_path):
    from ra2.annotations import read_annotations
    from ra2.cli import main

    store = _store(phantom, run_dir)
    pid = store.run.patient_ids[1]
    _score(store, pid, "LH_pip_E__2", 4)
    _score(store, pid, "RF_mtp_E__2", 9)
    store.submit({"kind": "box", "reader": "ann", "patient": pid, "joint": "LH_pip__3", "old": "ok", "new": "wrong"})
    drawn = [5.0, 6.0, 25.0, 30.0]
    store.submit({"kind": "box", "reader": "ann", "patient": pid, "joint": "LH_pip__4", "old": "ok", "new": drawn})
    out = tmp_path / "export"
    assert main(["review", "export", "--predictions", str(run_dir), "--films", str(phantom / "test"),
                 "--out", str(out)]) == 0
    # the run and films named before the action word are the same run (not the current folder)
    out2 = tmp_path / "export2"
    assert main(["review", "--predictions", str(run_dir), "--films", str(phantom / "test"), "export",
                 "--out", str(out2)]) == 0
    assert (out2 / "training.csv").read_bytes() == (out / "training.csv").read_bytes()
    train = io.read_training_csv(out / "training.csv", strict=True)  # every row valid, sums included
    assert list(train[C.PATIENT_COLUMN]) == [pid]
    assert train.loc[0, "LH_pip_E__2"] == 4 and train.loc[0, "RF_mtp_E__2"] == 9
    joints = train[list(C.JOINT_COLUMNS)].to_numpy()
    assert np.array_equal(joints, np.round(joints))
    mask = (out / "review_mask.csv").read_text().splitlines()
    assert len(mask) == 2 and sum(int(v) for v in mask[1].split(",")[1:]) == 2
    films = {f.limb: f for f in read_annotations(out / "annotations.json")}
    assert set(films) == set(C.LIMBS) and all((out / f.file_name).is_file() for f in films.values())
    sites = {o.site_id: o for o in films["LH"].objects}
    assert "LH_pip__3" not in sites and sites["LH_pip__4"].box == tuple(drawn)
    assert films["LH"].carpus_box is not None  # the importer derived the wrist detectors' crop
    # the hands detector's carpus region: this run's detections.json has none, so the wrist boxes' bounding box
    wrist = np.array([o.box for o in films["LH"].objects if o.site_id and "wrist" in o.site_id])
    carpus = [o.box for o in films["LH"].objects if o.site_id is None]
    assert carpus == [pytest.approx((*wrist[:, :2].min(axis=0), *wrist[:, 2:].max(axis=0)))]
    assert [o.box for o in films["LF"].objects if o.site_id is None] == []
    # a run that recorded the carpus box the hands detector found exports that one
    det = json.loads((run_dir / "detections.json").read_text())
    det["carpus"] = {f"{pid}-LH": [10.0, 12.0, 40.0, 44.0]}
    (run_dir / "detections.json").write_text(json.dumps(det))
    assert main(["review", "export", "--predictions", str(run_dir), "--films", str(phantom / "test"),
                 "--out", str(tmp_path / "export3")]) == 0
    films3 = {f.limb: f for f in read_annotations(tmp_path / "export3" / "annotations.json")}
    assert [o.box for o in films3["LH"].objects if o.site_id is None] == [(10.0, 12.0, 40.0, 44.0)]
    assert [o.box for o in films3["RH"].objects if o.site_id is None] == carpus_of(films["RH"])
    gold = {f"{a.patient_id}-{a.limb}": a for a in read_annotations(phantom / "gold_annotations.json")}
    g = {o.site_id: o.box for o in gold[f"{pid}-RF"].objects if o.site_id}
    assert {o.site_id: o.box for o in films["RF"].objects} == pytest.approx(g)
    # nothing reviewed: a clear line, no folder
    empty = fake_run(phantom, tmp_path / "other")
    assert main(["review", "export", "--predictions", str(empty), "--films", str(phantom / "test"),
                 "--out", str(tmp_path / "none")]) == 1
    assert not (tmp_path / "none").exists()


def test_command_line_mistakes_are_one_line(phantom, run_dir, tmp_path, capsys):
    from ra2.cli import main

    cases = [
        (["review"], "needs --predictions RUN_DIR and --films DIR"),
        (["review", "--predictions", str(tmp_path / "nowhere"), "--films", str(phantom / "test")], "not a folder"),
        (["review", "--predictions", str(phantom), "--films", str(phantom / "test")], "predictions.csv: no such file"),
        (["review", "--predictions", str(run_dir), "--films", str(phantom / "test"), "--gold",
          str(phantom / "train" / "training.csv")], "no gold score for patient(s)"),
        (["review", "export", "--predictions", str(run_dir), "--out", str(tmp_path / "x")], "no review log"),
    ]
    for argv, words in cases:
        assert main(argv) == 1, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert err[-1].startswith("ra2: error: ") and words in err[-1], (argv, err)
        assert "Traceback" not in "\n".join(err)
    _score(_store(phantom, run_dir), ReviewStore(open_run(run_dir, phantom / "test")).run.patient_ids[0],
           "LH_pip_E__2", 1)
    assert main(["review", "export", "--predictions", str(run_dir), "--out", str(tmp_path / "x")]) == 1
    assert "review_session.json: not found; give --films DIR" in capsys.readouterr().err


def test_totals_move_with_their_joints_and_never_below_zero(phantom, run_dir):
    """The run's Overall_* are calibrated totals, not sums: a correction moves each by its joints' change, floored
    at 0; the other patients' totals stay as they were."""
    preds = io.read_predictions_csv(run_dir / "predictions.csv")
    preds.loc[0, C.OVERALL_EROSION] = 0.5  # a calibrated total below its joints' sum
    preds.loc[0, C.OVERALL_TOTAL] = preds.loc[0, C.OVERALL_NARROWING] + 0.5
    preds.to_csv(run_dir / "predictions.csv", index=False)
    store = _store(phantom, run_dir)
    row, pid = 0, store.run.patient_ids[0]
    erosion = [c for c in C.JOINT_COLUMNS if C.SCORE_BY_COLUMN[c].kind == C.EROSION]
    col = max(erosion, key=lambda c: preds.loc[row, c])
    old = preds.loc[row, col]
    assert old > 0.5
    _score(store, pid, col, 0)
    out = io.read_predictions_csv(run_dir / REVIEWED_FILE)
    assert out.loc[0, C.OVERALL_EROSION] == 0.0  # 0.5 - old, floored
    t = preds.loc[0, C.OVERALL_TOTAL]
    assert out.loc[0, C.OVERALL_TOTAL] == pytest.approx(max(t - old, 0), abs=1e-4)
    assert out.loc[0, C.OVERALL_NARROWING] == pytest.approx(preds.loc[0, C.OVERALL_NARROWING])
    others = out.drop(index=0)[list(C.OVERALL_COLUMNS)].to_numpy()
    assert others == pytest.approx(preds.drop(index=0)[list(C.OVERALL_COLUMNS)].to_numpy())


def test_moved_totals_follow_the_joints_change_and_stop_at_zero():
    t, s = np.array([7.0, 3.0, 0.5, 12.3]), np.array([7.0, 0.0, 6.0, 12.0])
    new = np.array([10.0, 5.0, 0.0, 12.0])
    # a plain sum becomes the new sum; a calibrated total moves by the change (3 + 5), not by its ratio
    # (which would give 4 x 6 - 1 = 23); a drop below 0 stops at 0; an unchanged sum keeps its total exactly
    np.testing.assert_array_equal(moved_totals(t, s, new), [10.0, 8.0, 0.0, 12.3])


@pytest.mark.thorough
def test_an_export_trains_the_detectors_and_the_ensembles_then_predicts(phantom, run_dir, tmp_path):
    """What `ra2 review export` writes is what `ra2 train --train-detectors` takes: the reviewed patients (every
    one the reader touched, with a box marked wrong) train the four detectors and the ensembles, and the trained
    folder predicts a valid predictions.csv."""
    from ra2.cli import main

    store = _store(phantom, run_dir)
    for i, pid in enumerate(store.run.patient_ids):
        _score(store, pid, "LH_pip_E__2", i % 3)
    pid = store.run.patient_ids[0]
    store.submit({"kind": "box", "reader": "ann", "patient": pid, "joint": "RH_pip__3", "old": "ok", "new": "wrong"})
    out = tmp_path / "export"
    assert main(["review", "export", "--predictions", str(run_dir), "--films", str(phantom / "test"),
                 "--out", str(out)]) == 0
    models = tmp_path / "models"
    assert main(["train", "--train", str(out), "--models", str(models), "--profile", "smoke", "--train-detectors",
                 "--no-progress"]) == 0
    for name in C.DETECTORS:
        meta = json.loads((models / "detectors" / name / "metadata.json").read_text())
        assert meta["n_images"] > 0, name
    trained = json.loads((models / "pipeline.json").read_text())
    assert trained["patients"] == len(store.run.patient_ids)
    assert main(["predict", "--test", str(phantom / "test"), "--models", str(models), "--output",
                 str(tmp_path / "pred"), "--no-progress"]) == 0
    assert io.validate_predictions(tmp_path / "pred" / "predictions.csv", phantom / "test" / "template.csv") == []
