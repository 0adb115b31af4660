"""Shared seeded fixtures.

``phantom``: one small phantom challenge set for the whole session (3 training and 2 test patients, seed 11,
films at 0.15 of full size: 20 films, a few seconds to write): ``train/`` (``training.csv``, films,
``annotations.json``), ``test/`` (``template.csv``, films), ``gold.csv``, ``gold_annotations.json``.
Tests must leave it as they found it (``film_removed`` restores what it deletes).
"""

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
