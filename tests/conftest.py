"""Shared seeded fixtures.

``phantom``: one small phantom challenge set for the whole session (3 training and 2 test patients, seed 11,
films at 0.15 of full size: 20 films, a few seconds to write): ``train/`` (``training.csv``, films,
``annotations.json``), ``test/`` (``template.csv``, films), ``gold.csv``, ``gold_annotations.json``.
Tests must leave it as they found it (``film_removed`` restores what it deletes).
"""

import os
from contextlib import contextmanager

import pytest

PHANTOM = {"train_patients": 3, "test_patients": 2, "seed": 11, "size_scale": 0.15}


@pytest.fixture(scope="session")
def phantom(tmp_path_factory):
    from ra2.phantom import generate_dataset

    root = tmp_path_factory.mktemp("phantom")
    generate_dataset(root, workers=1, **PHANTOM)
    return root


@contextmanager
def film_removed(path):
    """``path`` deleted for the duration of the block, restored byte for byte afterwards."""
    kept = path.read_bytes()
    path.unlink()
    try:
        yield
    finally:
        path.write_bytes(kept)


@contextmanager
def film_replaced(path, data: bytes):
    """``path`` holding ``data`` (e.g. a truncated image) for the duration of the block, restored afterwards."""
    kept = path.read_bytes()
    path.write_bytes(data)
    try:
        yield
    finally:
        path.write_bytes(kept)


def strict() -> bool:
    """True under ``CI=true`` (``.ci/run`` sets it): checks that would run a weaker form or skip fail instead."""
    return os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")


def require(what: str, missing: str) -> None:
    """A check cannot run its strong form because ``missing`` is absent: under ``CI=true`` fail naming it,
    elsewhere skip (a developer's machine may lack it)."""
    message = f"{what}: {missing}"
    if strict():
        pytest.fail(f"CI=true: {message} (CI must run this check in its strong form)", pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def shipped_detector():
    """The four shipped detectors (``weights/detectors``) loaded once for the session (read-only: do not train
    or change them)."""
    from pathlib import Path

    from ra2.detection.detect import JointDetector

    folder = Path(__file__).resolve().parents[1] / "weights" / "detectors"
    if not (folder / "hands" / "model.weights.h5").is_file():
        pytest.skip(f"no shipped detectors in {folder}")
    return JointDetector.load(folder)
