"""A folder's films, each read once and detected, and the record of what happened to each (the road that
training and prediction share: :mod:`ra2.pipeline.train`, :mod:`ra2.pipeline.predict`)."""

from __future__ import annotations

import logging
from pathlib import Path

from ra2 import Ra2Error, contract

log = logging.getLogger("ra2.pipeline")


def film_names(folder: Path, patient_ids) -> list[tuple[str, str, Path | None]]:
    """``(patient, limb, film path or None when missing)`` for every patient and limb (contract order)."""
    from ra2.io import find_film

    out = []
    for pid in patient_ids:
        for limb in contract.LIMBS:
            try:
                out.append((str(pid), limb, find_film(folder, str(pid), limb)))
            except Ra2Error:
                out.append((str(pid), limb, None))
    return out


class DetectionRecord:
    """What detection did on a folder of films.

    ``boxes``: ``"{patient}-{limb}"`` -> site id -> box ``(y1, x1, y2, x2)`` in original-film pixels;
    ``box_sources``: ``"{patient}-{limb}"`` -> site id -> box source; ``carpus``: ``"{patient}-{limb}"`` (hand
    films) -> the hands detector's carpus box ``(y1, x1, y2, x2)``, original-film pixels, where it gave one (the
    region the wrist detectors ran on); ``sources``: box source (detected /
    reassigned / layout) -> count; ``missing``: films not found; ``failed``: ``"{patient}-{limb}"`` ->
    ``{"reason", "message"}`` for films that could not be read (``film_unreadable``) or detected
    (``detection_failed``); ``read``: films read.
    """

    def __init__(self):
        self.boxes: dict[str, dict[str, list[float]]] = {}
        self.box_sources: dict[str, dict[str, str]] = {}
        self.carpus: dict[str, list[float]] = {}
        self.sources: dict[str, int] = {}
        self.missing: list[str] = []
        self.failed: dict[str, dict[str, str]] = {}
        self.read = 0

    def add(self, key: str, found) -> None:
        """Record a film's :class:`ra2.detection.detect.FilmDetection`."""
        self.boxes[key] = {s: [round(float(v), 2) for v in b] for s, b in found.boxes.items()}
        self.box_sources[key] = {s: str(v) for s, v in found.sources.items()}
        if getattr(found, "carpus_box", None) is not None:
            self.carpus[key] = [round(float(v), 2) for v in found.carpus_box]
        for s in found.sources.values():
            self.sources[s] = self.sources.get(s, 0) + 1

    def fail(self, key: str, reason: str, message: str) -> None:
        """Record (and log once) a film that costs its limb's joints."""
        self.failed[key] = {"reason": reason, "message": message}
        log.warning("%s: %s (%s); its joints get fallback estimates", key, reason.replace("_", " "), message)

    def lost_films(self) -> dict[str, str]:
        """``"{patient}-{limb}"`` -> reason (``film_missing``, ``film_unreadable``, ``detection_failed``)."""
        return {**{k: "film_missing" for k in self.missing}, **{k: f["reason"] for k, f in self.failed.items()}}

    def to_dict(self) -> dict:
        """The ``detections.json`` / ``training_boxes.json`` document."""
        return {"films": self.boxes, "box_sources": self.box_sources, "carpus": self.carpus, "sources": self.sources,
                "missing_films": self.missing,
                "failed_films": self.failed,
                "films_read": self.read}


def detected_films(detector, folder: Path, patient_ids, record: DetectionRecord, progress: str | None = None,
                   boxes: dict | None = None):
    """``(patient_id, limb, film [H, W] float32, {site id: (y1, x1, y2, x2) film pixels})`` for every film of
    ``patient_ids`` in ``folder``, each film read once; the boxes are ``detector.detect_film``'s, or
    ``boxes[(patient_id, limb)]`` when ``boxes`` is given (e.g. ground truth). A film that is missing, cannot
    be read or fails in detection is skipped and recorded in ``record`` (the fallback is at the film: its
    limb's joints, never the run). ``progress``: a progress-bar label, or None."""
    from ra2.io import read_film

    entries = film_names(Path(folder), patient_ids)
    record.missing.extend(f"{pid}-{limb}" for pid, limb, path in entries if path is None)
    present = [e for e in entries if e[2] is not None]
    if progress:
        from tqdm import tqdm

        present = tqdm(present, desc=progress, unit="film")
    for pid, limb, path in present:
        key = f"{pid}-{limb}"
        try:
            film = read_film(path)
        except Ra2Error as exc:
            record.fail(key, "film_unreadable", str(exc))
            continue
        except MemoryError:
            record.fail(key, "film_unreadable", f"film {path}: not enough memory to decode it")
            continue
        record.read += 1
        if boxes is not None:
            if (pid, limb) not in boxes:
                record.fail(key, "detection_failed", "no boxes given for this film")
                continue
            site_boxes = boxes[(pid, limb)]
        else:
            try:
                found = detector.detect_film(film, limb)
            except Exception as exc:  # noqa: BLE001 - one film's failure costs that film, not the run
                record.fail(key, "detection_failed", f"{type(exc).__name__}: {exc}")
                continue
            record.add(key, found)
            site_boxes = found.boxes
        yield pid, limb, film, site_boxes
