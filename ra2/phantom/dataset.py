"""Write a whole phantom data set in the challenge layout (train/, test/, gold.csv, ground truth).

Layout written by :func:`generate_dataset` under ``out``::

    train/training.csv        90 columns, official order, true scores
    train/{id}-{LH,RH,LF,RF}.jpg
    train/annotations.json    detector ground truth of the training films (COCO-style)
    test/template.csv         Patient_ID filled, every other cell empty
    test/{id}-{limb}.jpg
    gold.csv                  the test patients' true scores (90 columns)
    gold_annotations.json     the test films' ground truth

Determinism: patient scores come from one generator seeded with ``seed``; every film has its own
generator seeded by ``(seed, patient index, limb index)``, so the bytes do not depend on the number of
worker processes; JPEGs carry no metadata.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

from ra2 import Ra2Error, contract
from ra2.annotations import ANNOTATIONS_FILE, FilmAnnotation, write_annotations
from ra2.phantom.labels import sample_patient_scores
from ra2.phantom.render import render_film

ID_PREFIX = "PHA"
GOLD_ANNOTATIONS_FILE = "gold_annotations.json"


def patient_id(index: int) -> str:
    """Patient id of the ``index``-th (0-based) phantom patient: ``PHA0001``, ``PHA0002``, ..."""
    return f"{ID_PREFIX}{index + 1:04d}"


def encode_jpeg(image: np.ndarray, quality: int) -> bytes:
    """[H, W] uint8 -> baseline grayscale JPEG bytes (no EXIF/JFIF time stamps: deterministic)."""
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="JPEG", quality=int(quality), optimize=False, subsampling=0)
    return buf.getvalue()


def _film_job(args: tuple) -> FilmAnnotation:
    """Render and write one film; returns its annotation (runs in a worker process)."""
    folder, pid, limb, scores, seed, index, size_scale = args
    rng = np.random.default_rng([seed, index, contract.LIMBS.index(limb), 7])
    image, ann = render_film(limb, scores, rng, size_scale=size_scale, patient_id=pid)
    quality = int(rng.integers(82, 96))
    (Path(folder) / ann.file_name).write_bytes(encode_jpeg(image, quality))
    return ann


def _write_csv(path: Path, rows: list[dict], blank: bool) -> None:
    """The 90 columns of ``rows`` (integer scores; ``blank``: empty score cells, a template)."""
    from ra2.io import write_csv_atomic

    write_csv_atomic(path, list(contract.COLUMNS),
                     [[r[contract.PATIENT_COLUMN]] + ["" if blank else str(int(r[c])) for c in contract.COLUMNS[1:]]
                      for r in rows])


def generate_dataset(out: Path, train_patients: int, test_patients: int, seed: int,
                     size_scale: float | Sequence[float] = 1.0, workers: int | None = None) -> None:
    """Write a phantom data set under ``out`` (see the module docstring for the layout).

    Phantom films (``PHA*-{LH,RH,LF,RF}.jpg``) already in ``out/train`` or ``out/test`` are replaced: the
    folders then hold exactly the films of the CSVs.

    ``size_scale`` scales the film sizes (1.0: about 1000-3000 px per side); a sequence of scales is used in
    turn, patient ``i`` (counted over training and test patients) at ``size_scale[i % len(size_scale)]``, for
    data sets of mixed film resolutions. ``workers``: processes used for rendering (default: the CPU count;
    1 renders in this process); the output does not depend on it.
    """
    out = Path(out)
    if train_patients < 0 or test_patients < 0 or train_patients + test_patients == 0:
        raise Ra2Error(f"phantom: need at least one patient (train={train_patients}, test={test_patients})")
    scales = [float(s) for s in (size_scale if isinstance(size_scale, Sequence) else [size_scale])]
    if not scales or not all(s > 0 for s in scales):
        raise Ra2Error(f"phantom: --size-scale must be > 0, got {size_scale}")
    train_dir, test_dir = out / "train", out / "test"
    for d in (train_dir, test_dir):
        d.mkdir(parents=True, exist_ok=True)
        # Films of an earlier, larger phantom run in the same folder would not match the new CSVs.
        for stale in d.glob(f"{ID_PREFIX}[0-9]*-[LR][HF].jpg"):
            stale.unlink()
    score_rng = np.random.default_rng([seed, 0])
    rows = []
    for i in range(train_patients + test_patients):
        row = {contract.PATIENT_COLUMN: patient_id(i)}
        row.update(sample_patient_scores(score_rng))
        rows.append(row)
    jobs = []
    for i, row in enumerate(rows):
        folder = train_dir if i < train_patients else test_dir
        for limb in contract.LIMBS:
            jobs.append((str(folder), row[contract.PATIENT_COLUMN], limb, row, seed, i, scales[i % len(scales)]))
    n_workers = workers if workers is not None else (os.cpu_count() or 1)
    n_workers = max(1, min(n_workers, len(jobs)))
    if n_workers == 1:
        anns = [_film_job(j) for j in jobs]
    else:
        with ProcessPoolExecutor(max_workers=n_workers) as pool:
            anns = list(pool.map(_film_job, jobs, chunksize=2))
    n_train = 4 * train_patients
    _write_csv(train_dir / "training.csv", rows[:train_patients], blank=False)
    _write_csv(test_dir / "template.csv", rows[train_patients:], blank=True)
    _write_csv(out / "gold.csv", rows[train_patients:], blank=False)
    write_annotations(train_dir / ANNOTATIONS_FILE, anns[:n_train])
    write_annotations(out / GOLD_ANNOTATIONS_FILE, anns[n_train:])
