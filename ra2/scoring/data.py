"""Crop data sets for the three regressors (foot erosion, hand erosion, narrowing).

One sample = one score column of one patient: the crop of the column's site (cut with
:func:`ra2.detection.crops.cut_crop`, right limbs mirrored) and its score from ``training.csv``.
Sites: foot erosion = MTP 1-5 and toe IP of both feet; hand erosion = PIP/IP, MCP and the six wrist erosion
areas of both hands; narrowing = PIP, MCP and the six wrist narrowing areas of both hands plus the foot
joints.

Arrays of a :class:`CropSet`: ``images [N, s, s]`` float32 raw crops (film intensities, usually [0, 1]);
``labels [N]`` float32 (NaN where unknown); ``patient_ids [N]`` str; ``columns [N]`` str (score column).
The sample-wise standardisation (:func:`standardize`) is applied after augmentation, just before the
network, as Keras' ``samplewise_std_normalization`` did in the thesis.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ra2 import Ra2Error, contract
from ra2.detection.crops import DEFAULT_MARGIN, site_crops
from ra2.io import read_film, read_training_csv

log = logging.getLogger("ra2.scoring")

FilmReader = Callable[[Path], np.ndarray]


@dataclass
class CropSet:
    """The samples of one regressor data set (see the module docstring for the arrays)."""

    dataset: str
    images: np.ndarray
    labels: np.ndarray
    patient_ids: np.ndarray
    columns: np.ndarray

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, index) -> "CropSet":
        return CropSet(self.dataset, self.images[index], self.labels[index], self.patient_ids[index],
                       self.columns[index])

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, dataset=np.array(self.dataset), images=self.images, labels=self.labels,
                 patient_ids=self.patient_ids.astype(str), columns=self.columns.astype(str))
        tmp.replace(path)

    @classmethod
    def load(cls, path: str | Path) -> "CropSet":
        with np.load(path, allow_pickle=False) as z:
            return cls(str(z["dataset"]), z["images"], z["labels"], z["patient_ids"], z["columns"])


def standardize(images: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Sample-wise standardisation: each ``[s, s]`` image of ``[B, s, s]`` to mean 0, std 1 (flat: 0)."""
    x = np.asarray(images, dtype=np.float32)
    axes = tuple(range(1, x.ndim))
    mean = x.mean(axis=axes, keepdims=True)
    std = x.std(axis=axes, keepdims=True)
    return ((x - mean) / np.maximum(std, eps)).astype(np.float32)


def crop_sets_from_films(films: Iterable[tuple[str, str, np.ndarray, Mapping[str, tuple]]],
                         labels: pd.DataFrame | None, sizes: Mapping[str, int],
                         margin: float = DEFAULT_MARGIN, failures: dict | None = None) -> dict[str, CropSet]:
    """Cut the crop data sets from films and their site boxes.

    Args:
        films: ``(patient_id, limb, film [H, W] float32, {site_id: (y1, x1, y2, x2) in film pixels})``.
        labels: scores indexed by ``Patient_ID`` with joint columns, or None (labels become NaN).
        sizes: data set -> crop side; data sets not in ``sizes`` are skipped.
        failures: when given, a site whose crop cannot be cut (e.g. a non-finite box) is skipped and recorded
            as ``failures[(patient_id, site_id)] = message`` (the fallback is at the joint); when None, such an
            error propagates.

    Returns:
        data set -> :class:`CropSet` (every data set of ``sizes``, possibly empty).
    """
    acc: dict[str, dict[str, list]] = {d: {"images": [], "labels": [], "pids": [], "cols": []} for d in sizes}
    for patient_id, limb, film, boxes in films:
        if failures is None:
            crops = site_crops(film, boxes, limb, sizes, margin=margin)
        else:
            crops = {}
            for site_id, box in boxes.items():
                try:
                    crops.update(site_crops(film, {site_id: box}, limb, sizes, margin=margin))
                except Exception as exc:  # noqa: BLE001 - one joint's crop costs that joint
                    failures[(str(patient_id), site_id)] = f"{type(exc).__name__}: {exc}"
        for site_id, per_dataset in crops.items():
            for score in contract.scores_of_site(site_id):
                if score.dataset not in per_dataset:
                    continue
                value = np.nan
                if labels is not None:
                    if patient_id not in labels.index:
                        raise Ra2Error(f"patient {patient_id} has a film but no row in the labels")
                    value = float(labels.at[patient_id, score.column])
                a = acc[score.dataset]
                a["images"].append(per_dataset[score.dataset])
                a["labels"].append(value)
                a["pids"].append(str(patient_id))
                a["cols"].append(score.column)
    out = {}
    for d, a in acc.items():
        s = int(sizes[d])
        images = np.stack(a["images"]).astype(np.float32) if a["images"] else np.zeros((0, s, s), np.float32)
        out[d] = CropSet(d, images, np.asarray(a["labels"], dtype=np.float32),
                         np.asarray(a["pids"], dtype=str), np.asarray(a["cols"], dtype=str))
    return out


def _film_boxes(annotations_path: Path) -> list[tuple[str, str, str, dict[str, tuple]]]:
    """``(patient_id, limb, file_name, {site_id: box})`` of every annotated film."""
    from ra2.annotations import read_annotations

    out = []
    for film in read_annotations(annotations_path):
        boxes = {o.site_id: tuple(float(v) for v in o.box) for o in film.objects if o.site_id is not None}
        out.append((film.patient_id, film.limb, film.file_name, boxes))
    return out


def _fingerprint(*parts) -> str:
    h = hashlib.sha1()
    for p in parts:
        if isinstance(p, Path):
            st = p.stat()
            h.update(f"{p.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode())
        else:
            h.update(json.dumps(p, sort_keys=True, default=str).encode())
    return h.hexdigest()[:12]


def build_crop_sets(films_dir: str | Path, annotations_path: str | Path, sizes: Mapping[str, int],
                    labels_csv: str | Path | None = None, margin: float = DEFAULT_MARGIN,
                    cache_dir: str | Path | None = None, reader: FilmReader | None = None,
                    progress: bool = False) -> dict[str, CropSet]:
    """Crop data sets of a challenge-layout folder, cached as ``.npz`` files.

    Args:
        films_dir: folder of ``{Patient_ID}-{limb}.jpg`` films (``train/`` or ``test/``).
        annotations_path: site boxes per film (the phantom's ``annotations.json`` format, boxes
            ``(y1, x1, y2, x2)`` in original-film pixels).
        sizes: data set -> crop side in pixels.
        labels_csv: ``training.csv`` for the scores (None: labels NaN), read by
            :func:`ra2.io.read_training_csv`: a row with a missing or out-of-range score is skipped and reported,
            and its patient's films are left out (one warning).
        cache_dir: where ``<dataset>_<size>_<fingerprint>.npz`` caches go (None: no cache). The fingerprint
            covers the files (path, size, mtime), the margin and the size.
        reader: film reader ``path -> [H, W] float32`` in [0, 1] (default :func:`ra2.io.read_film`).
    """
    films_dir, annotations_path = Path(films_dir), Path(annotations_path)
    if not annotations_path.is_file():
        raise Ra2Error(f"{annotations_path}: no such annotations file (site boxes are needed to cut crops)")
    label_path = Path(labels_csv) if labels_csv is not None else None
    key = _fingerprint(annotations_path, label_path if label_path else "nolabels", margin, dict(sizes))
    cache_paths = {d: Path(cache_dir) / f"{d}_{sizes[d]}_{key}.npz" for d in sizes} if cache_dir else {}
    if cache_paths and all(p.is_file() for p in cache_paths.values()):
        return {d: CropSet.load(p) for d, p in cache_paths.items()}

    labels = None
    entries = _film_boxes(annotations_path)
    if label_path is not None:
        labels = read_training_csv(label_path).set_index(contract.PATIENT_COLUMN)
        unlabelled = sorted({pid for pid, *_ in entries if pid not in labels.index})
        if unlabelled:  # their rows were skipped (read_training_csv listed them) or are absent
            log.warning("%s: %d annotated patient(s) without a usable row, their films left out: %s", label_path,
                        len(unlabelled), ", ".join(unlabelled[:10]))
            entries = [e for e in entries if e[0] in labels.index]
    read = reader or read_film

    def films():
        it = entries
        if progress:
            from tqdm import tqdm

            it = tqdm(entries, desc="cutting crops", unit="film")
        for pid, limb, name, boxes in it:
            path = films_dir / name
            if not path.is_file():
                raise Ra2Error(f"{path}: film listed in {annotations_path} is missing")
            yield pid, limb, read(path), boxes

    sets = crop_sets_from_films(films(), labels, sizes, margin)
    for d, p in cache_paths.items():
        sets[d].save(p)
    return sets
