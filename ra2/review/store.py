"""The reader's work, kept so that nothing accepted is ever lost: an append-only log and the file rebuilt from it.

Files, in the run folder beside ``predictions.csv``:

- ``review_log.jsonl``: one JSON object per line, one line per accepted action, appended, flushed and fsync'ed
  before the action is acknowledged. A score: ``{"kind": "score", "reader", "time" (UTC, ISO 8601), "patient",
  "joint" (a joint column, e.g. ``LH_pip_E__2``), "old" (the value the reader saw), "new" (the reader's score)}``.
  A box: the same with ``"kind": "box"``, ``"joint"`` a site id (``LH_pip__2``) and ``old`` / ``new`` box states:
  ``"ok"`` (the run's box stands), ``"wrong"`` (marked wrong), or ``[y1, x1, y2, x2]`` (a box the reader drew, in
  pixels of the original, unmirrored film).
- ``reviewed.csv``: ``predictions.csv`` with the corrections applied (the last score of each joint wins), the
  ``Overall_*`` columns moved by their joints' change (:func:`moved_totals`), written atomically
  (:func:`ra2.io.write_predictions`) in the template's order and checked against it
  (:func:`ra2.io.validate_predictions`). It is rebuilt from the log after every correction and whenever a store
  opens, so it can always be thrown away.

Refusals (each one line, nothing written): an unknown patient or joint, a score that is not a whole number in the
joint's range, a box that is not four numbers inside its film, and a *stale* action, whose ``old`` is not what the
log holds now (another tab or reader changed it first): no tab silently overwrites another's work.

A crash mid-append leaves at most one partial last line, never acknowledged to the reader: opening the store cuts
it off (a warning says so) and keeps every complete line. A damaged line before the last one is an error naming
the line. One lock serialises the actions of the server's threads; :func:`hold_folder` keeps a second server off
the same folder.
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import os
import threading
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from ra2 import Ra2Error, contract
from ra2.review.run import ReviewRun
from ra2.scoring.totals import TOTAL_PARTS

log = logging.getLogger("ra2.review")

LOG_FILE = "review_log.jsonl"
REVIEWED_FILE = "reviewed.csv"
LOCK_FILE = ".review.lock"
SESSION_FILE = "review_session.json"
BOX_OK, BOX_WRONG = "ok", "wrong"
STALE_TOLERANCE = 1e-9
"""Largest difference between a tab's ``old`` value and the current one that still counts as the same value."""

_COLUMN_INDEX = {c: i for i, c in enumerate(contract.JOINT_COLUMNS)}
_DATASET_NAME = {"foot_erosion": "foot erosion", "hand_erosion": "hand erosion", "narrowing": "narrowing"}


class ReviewError(Ra2Error):
    """A refused action: ``status`` is the HTTP status the server answers with (400 bad value, 404 unknown
    patient or joint, 409 stale), the message one line."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def hold_folder(run_dir: Path):
    """Take the run folder's review lock (``.review.lock``, an exclusive ``flock``) for the life of the returned
    file object; :class:`Ra2Error` when another process holds it."""
    path = Path(run_dir) / LOCK_FILE
    fh = open(path, "a+")  # noqa: SIM115 - held open: the lock lasts as long as the file
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as err:
        fh.seek(0)
        holder = fh.read().strip() or "another process"
        fh.close()
        raise Ra2Error(f"{run_dir}: already being reviewed by {holder} (its lock {path}); "
                       "stop that server first") from err
    fh.seek(0)
    fh.truncate()
    fh.write(f"ra2 review, pid {os.getpid()}\n")
    fh.flush()
    return fh


def write_session(run: ReviewRun, reader: str) -> Path:
    """``RUN/review_session.json``: the films and gold the review showed, its template and reader (what
    ``ra2 review export`` falls back on)."""
    from ra2.runinfo import write_json

    return write_json(run.run_dir / SESSION_FILE, {
        "films": str(run.films_dir.resolve()), "gold": None if run.gold_path is None else str(run.gold_path.resolve()),
        "template": str(run.template_path.resolve()), "reader": reader, "started": _now()})


def read_session(run_dir: Path) -> dict:
    """The ``review_session.json`` of a run folder; :class:`Ra2Error` when there is none or it is broken."""
    path = Path(run_dir) / SESSION_FILE
    try:
        doc = json.loads(path.read_text())
        doc["films"]
    except FileNotFoundError:
        raise Ra2Error(f"{path}: not found; give --films DIR") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as exc:
        raise Ra2Error(f"{path}: not a review session file ({exc}); give --films DIR") from None
    return doc


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def _number(value, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ReviewError(400, f"{what} must be a number, got {value!r}")
    x = float(value)
    if not math.isfinite(x):
        raise ReviewError(400, f"{what} must be a finite number, got {value!r}")
    return x


def _is_json_object(data: bytes) -> bool:
    try:
        return isinstance(json.loads(data.decode("utf-8")), dict)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return False


def _box_state(value, what: str):
    """A box state as logged: ``"ok"``, ``"wrong"`` or a list of 4 floats; ReviewError otherwise."""
    if value in (BOX_OK, BOX_WRONG):
        return value
    if isinstance(value, (list, tuple)) and len(value) == 4:
        return [round(_number(v, what), 2) for v in value]
    raise ReviewError(400, f"{what} must be \"ok\", \"wrong\" or a box [y1, x1, y2, x2], got {value!r}")


def moved_totals(totals: np.ndarray, old_sums: np.ndarray, new_sums: np.ndarray) -> np.ndarray:
    """``[P]`` patient totals moved by the change of the sums of their joints, ``old_sums`` -> ``new_sums``
    (``[P]`` each): ``T' = T + S' - S``, floored at 0; an unchanged sum keeps its total exactly.

    The run's totals are calibrated, ``log2(T + 1) = a log2(S + 1) + c`` (:mod:`ra2.scoring.totals`), not the
    sums, so a total calibrated below its sum could go negative when a reader lowers its joints (the floor).
    Moving them by the ratio of the sums in log2 space instead (how the calibration moves when ``a = 1``) was
    measured and not kept: on the demo's 30 held-out patients, flagged joints set to gold lowered SC1 by 35.7%
    with it against 33.5% with the change, but on the smoke demo, whose sums are near 0, the ratio blew the totals
    up and raised SC1 by 32% (5.6% with the change) (``docs/review.md``)."""
    moved = np.maximum(totals + (new_sums - old_sums), 0.0)
    return np.where(new_sums == old_sums, totals, moved)


class ReviewStore:
    """The corrections of one run folder: the log's replay in memory, ``reviewed.csv`` on disk.

    ``values``: ``[P, 86]`` float64, the current score of every joint (prediction, else the last correction);
    ``reviewed``: ``[P, 86]`` bool, True where a reader accepted a score; ``boxes``: ``(patient, site id)`` ->
    box state for the boxes a reader touched; ``events``: the log's entries in order.
    """

    def __init__(self, run: ReviewRun, film_shape=None, read_only: bool = False):
        """``film_shape``: ``(patient, limb) -> (height, width)`` or None, used to check drawn boxes.
        ``read_only``: replay the log's complete lines and write nothing (no cut of a partial last line, no
        ``reviewed.csv``): what ``ra2 review export`` opens, so that it can run beside a live server without
        touching the files that server appends to and rebuilds."""
        self.run = run
        self.read_only = read_only
        self.log_path = run.run_dir / LOG_FILE
        self.csv_path = run.run_dir / REVIEWED_FILE
        self.film_shape = film_shape
        self._lock = threading.Lock()
        self._row = {pid: r for r, pid in enumerate(run.patient_ids)}
        self.values = run.joint_values.copy()
        self.reviewed = np.zeros(self.values.shape, dtype=bool)
        self.readers: dict[tuple[int, int], str] = {}
        self.boxes: dict[tuple[str, str], object] = {}
        self.events: list[dict] = []
        for number, event in self._read_log():
            try:
                self._apply(self._check(event, stale=False))
            except ReviewError as exc:
                raise Ra2Error(f"{self.log_path}, line {number}: {exc} (is this the log of another run?)") from None
        if not read_only:
            self.rebuild()

    # ------------------------------------------------------------------------------------------- the log
    def _read_log(self) -> list[tuple[int, dict]]:
        """The complete lines of the log as ``(line number, event)``. A last line without its newline is kept
        when it is a whole JSON object (a log repaired by hand; the newline is added) and otherwise, a crash
        mid-append that was never acknowledged, cut off the file (read-only: left there and not replayed)."""
        if not self.log_path.is_file():
            return []
        data = self.log_path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data) and _is_json_object(data[end:]):
            if not self.read_only:
                with open(self.log_path, "ab") as fh:
                    fh.write(b"\n")
                    fh.flush()
                    os.fsync(fh.fileno())
            data, end = data + b"\n", len(data) + 1
        if end < len(data) and not self.read_only:
            log.warning("%s: cut off an incomplete last line of %d bytes (a write interrupted by a crash; it "
                        "was never acknowledged)", self.log_path, len(data) - end)
            with open(self.log_path, "r+b") as fh:
                fh.truncate(end)
                fh.flush()
                os.fsync(fh.fileno())
        out = []
        for number, line in enumerate(data[:end].decode("utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                event = json.loads(line)
            except json.JSONDecodeError as exc:
                raise Ra2Error(f"{self.log_path}, line {number}: not a JSON object ({exc.msg}); the log is "
                               f"damaged: repair or move that line") from None
            if not isinstance(event, dict):
                raise Ra2Error(f"{self.log_path}, line {number}: not a JSON object")
            out.append((number, event))
        return out

    def _append(self, event: dict) -> None:
        """Append one line, flushed and fsync'ed; a failed write (a full disk) is cut back off, so the next
        append never lands glued to a fragment."""
        line = (json.dumps(event, sort_keys=True, separators=(",", ":")) + "\n").encode("utf-8")
        try:
            with open(self.log_path, "ab") as fh:
                size = fh.tell()
                try:
                    fh.write(line)
                    fh.flush()
                    os.fsync(fh.fileno())
                except OSError:
                    fh.truncate(size)
                    raise
        except OSError as exc:
            raise Ra2Error(f"cannot append to {self.log_path}: {exc.strerror or exc}") from None

    # -------------------------------------------------------------------------------------- checking
    def _patient_row(self, patient) -> int:
        if not isinstance(patient, str) or patient not in self._row:
            raise ReviewError(404, f"unknown patient {patient!r} (not in {self.run.template_path.name})")
        return self._row[patient]

    def _check(self, event: dict, stale: bool = True) -> dict:
        """Validate one event (a request, or a log line when ``stale`` is False) -> the normalised event."""
        kind = event.get("kind")
        if kind not in ("score", "box"):
            raise ReviewError(400, f"unknown action {kind!r} (expected \"score\" or \"box\")")
        reader = event.get("reader")
        if not isinstance(reader, str) or not reader.strip():
            raise ReviewError(400, "a correction needs the reader's name")
        row = self._patient_row(event.get("patient"))
        patient, joint = event["patient"], event.get("joint")
        if kind == "score":
            if joint not in _COLUMN_INDEX:
                raise ReviewError(404, f"unknown joint {joint!r} (expected a joint column such as LH_pip_E__2)")
            col = _COLUMN_INDEX[joint]
            score = contract.SCORE_BY_COLUMN[joint]
            new = _number(event.get("new"), f"the new score of {joint}")
            if new != round(new) or not 0 <= new <= score.max_score:
                raise ReviewError(400, f"score {event.get('new')!r} refused for {patient} {joint}: "
                                       f"{_DATASET_NAME[score.dataset]} is scored 0-{score.max_score} in whole steps")
            old = _number(event.get("old"), f"the old score of {joint}")
            now = float(self.values[row, col])
            if stale and abs(old - now) > STALE_TOLERANCE:
                raise ReviewError(409, f"{patient} {joint} is {now:g} now, not {old:g} as this page showed: it was "
                                       f"changed elsewhere (another tab?); reload to see it")
            return {"kind": kind, "reader": reader, "time": event.get("time") or _now(), "patient": patient,
                    "joint": joint, "old": old, "new": int(new)}
        if joint not in contract.SITE_BY_ID:
            raise ReviewError(404, f"unknown joint {joint!r} (expected a site id such as LH_pip__2)")
        site = contract.SITE_BY_ID[joint]
        new = _box_state(event.get("new"), f"the new box of {joint}")
        old = _box_state(event.get("old"), f"the old box of {joint}")
        if isinstance(new, list):
            y1, x1, y2, x2 = new
            shape = self.film_shape(patient, site.limb) if self.film_shape else None
            if not (y2 > y1 and x2 > x1 and y1 >= 0 and x1 >= 0) or (shape and (y2 > shape[0] or x2 > shape[1])):
                raise ReviewError(400, f"box {new} refused for {patient} {joint}: not a box (y1, x1, y2, x2) "
                                       f"inside the film" + (f" ({shape[1]}x{shape[0]} px)" if shape else ""))
        now = self.boxes.get((patient, joint), BOX_OK)
        if stale and old != now:
            raise ReviewError(409, f"{patient} {joint}: its box is {json.dumps(now)} now, not {json.dumps(old)} as "
                                   f"this page showed: it was changed elsewhere (another tab?); reload to see it")
        return {"kind": kind, "reader": reader, "time": event.get("time") or _now(), "patient": patient,
                "joint": joint, "old": old, "new": new}

    def _apply(self, event: dict) -> None:
        row = self._row[event["patient"]]
        if event["kind"] == "score":
            col = _COLUMN_INDEX[event["joint"]]
            self.values[row, col] = float(event["new"])
            self.reviewed[row, col] = True
            self.readers[(row, col)] = event["reader"]
        else:
            self.boxes[(event["patient"], event["joint"])] = event["new"]
        self.events.append(event)

    # ------------------------------------------------------------------------------------------ actions
    def submit(self, request: dict) -> dict:
        """Check one action (``kind``, ``reader``, ``patient``, ``joint``, ``old``, ``new``), append it to the log
        (fsync'ed), apply it and rebuild ``reviewed.csv``. Returns the logged event. A refused action raises
        :class:`ReviewError` and leaves both files as they were."""
        if not isinstance(request, dict):
            raise ReviewError(400, "the request must be a JSON object")
        if self.read_only:
            raise Ra2Error(f"{self.log_path}: opened read-only; no correction can be added here")
        with self._lock:
            event = self._check({k: request.get(k) for k in ("kind", "reader", "patient", "joint", "old", "new")})
            if event["kind"] == "score":  # the file it makes must be valid before the action is logged
                row, col = self._row[event["patient"]], _COLUMN_INDEX[event["joint"]]
                values = self.values.copy()
                values[row, col] = float(event["new"])
                staged = self._write_reviewed(values)
            else:
                staged = None
            try:
                self._append(event)
            except Ra2Error:
                if staged is not None:
                    staged.unlink(missing_ok=True)
                raise
            self._apply(event)
            if staged is not None:
                os.replace(staged, self.csv_path)
            return event

    def rebuild(self) -> Path:
        """Write ``reviewed.csv`` from the current joint values (:meth:`_write_reviewed`, then moved into place)."""
        os.replace(self._write_reviewed(self.values), self.csv_path)
        return self.csv_path

    def _write_reviewed(self, values: np.ndarray) -> Path:
        """Write what ``reviewed.csv`` would hold with joint values ``values`` (``[P, 86]``) to a staging file
        beside it and check it against the template; returns the staging file, which the caller moves onto
        ``reviewed.csv``. The predictions with ``values``; each ``Overall_*`` column moved with its joints
        (:func:`moved_totals`; an unchanged run gives the predictions' own totals). Not valid (e.g. the template
        rewritten on disk while the server runs): :class:`ReviewError` (400) with the first problem,
        the staging file removed and ``reviewed.csv`` untouched."""
        from ra2 import io

        frame = self.run.predictions.copy()
        values = np.asarray(values, dtype=np.float64)
        frame[list(contract.JOINT_COLUMNS)] = values
        for total, parts in TOTAL_PARTS.items():
            idx = [contract.JOINT_COLUMNS.index(c) for c in parts]
            frame[total] = moved_totals(frame[total].to_numpy(dtype=np.float64),
                                        self.run.joint_values[:, idx].sum(axis=1), values[:, idx].sum(axis=1))
        staged = self.csv_path.with_name(f".{REVIEWED_FILE}.{os.getpid()}.{threading.get_ident()}.staged")
        try:
            io.write_predictions(frame, self.run.template, staged)
            problems = io.validate_predictions(staged, self.run.template_path)
        except Ra2Error as exc:
            staged.unlink(missing_ok=True)
            raise ReviewError(400, f"{self.csv_path} would not be valid: {exc}") from None
        if problems:
            staged.unlink(missing_ok=True)
            raise ReviewError(400, f"{self.csv_path} would not be valid against {self.run.template_path}: "
                                   f"{problems[0]}")
        return staged

    # ---------------------------------------------------------------------------------------- read-outs
    def progress(self) -> dict:
        """``{"reviewed", "flagged", "flagged_reviewed", "joints", "boxes_marked"}`` (counts of joint cells)."""
        flagged = self.run.flagged
        return {"reviewed": int(self.reviewed.sum()), "flagged": int(flagged.sum()),
                "flagged_reviewed": int((self.reviewed & flagged).sum()), "joints": int(self.values.size),
                "boxes_marked": sum(1 for v in self.boxes.values() if v != BOX_OK)}

    def box_state(self, patient: str, site_id: str):
        return self.boxes.get((patient, site_id), BOX_OK)

    def patient_state(self, row: int) -> dict:
        """Everything the page shows of one patient: its joints (flagged first, then by spread, highest first),
        each with ``joint``, ``site``, ``limb``, ``kind``, ``max``, ``predicted``, ``spread`` (None where absent),
        ``flagged``, ``gold`` (None without ``--gold``), ``value``, ``reviewed``, ``reader``; its films with their
        boxes ``[y1, x1, y2, x2]`` (original-film pixels), sources and box states."""
        run = self.run
        pid = run.patient_ids[row]
        pred = run.joint_values[row]
        joints = []
        for col, name in enumerate(contract.JOINT_COLUMNS):
            score = contract.SCORE_BY_COLUMN[name]
            s = run.spread[row, col]
            joints.append({"joint": name, "site": score.site.id, "limb": score.limb, "kind": score.kind,
                           "max": score.max_score, "predicted": float(pred[col]),
                           "spread": float(s) if np.isfinite(s) else None, "flagged": bool(run.flagged[row, col]),
                           "gold": None if run.gold is None else float(run.gold[row, col]),
                           "value": float(self.values[row, col]), "reviewed": bool(self.reviewed[row, col]),
                           "reader": self.readers.get((row, col))})
        joints.sort(key=lambda j: (not j["flagged"], -(j["spread"] if j["spread"] is not None else -1.0)))
        films = []
        for limb in contract.LIMBS:
            boxes = run.boxes(pid, limb)
            sources = run.box_sources(pid, limb)
            listed = [{"site": site, "box": [float(v) for v in box], "source": sources.get(site, "detected"),
                       "state": self.box_state(pid, site)} for site, box in boxes.items()]
            # boxes the reader drew where the run has none (a film whose detection failed, a run without
            # detections.json): shown, so they can be seen, redrawn and taken back
            listed += [{"site": site, "box": state, "source": "drawn", "state": state}
                       for (p, site), state in self.boxes.items()
                       if p == pid and site not in boxes and isinstance(state, list)
                       and contract.SITE_BY_ID[site].limb == limb]
            films.append({"limb": limb, "boxes": listed})
        spread_row = run.spread[row]
        top = float(np.nanmax(spread_row)) if np.isfinite(spread_row).any() else None
        return {"patient": pid, "max_spread": top, "joints": joints, "films": films,
                "flagged": int(run.flagged[row].sum()),
                "flagged_reviewed": int((run.flagged[row] & self.reviewed[row]).sum()),
                "reviewed": int(self.reviewed[row].sum())}
