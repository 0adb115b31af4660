"""Small seeded score tables for the io/metrics/baseline/CLI tests (built from the contract, no files)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from ra2 import contract as C


def score_frame(ids: list[str], seed: int = 0, nonzero: float = 0.3) -> pd.DataFrame:
    """A valid training-style frame: random integer joint scores within their ranges, Overall_* sums.

    ids: patient ids (str); about ``nonzero`` of the joint scores are non-zero.
    Returns ``[len(ids), 90]`` in ``contract.COLUMNS`` order.
    """
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {C.PATIENT_COLUMN: list(ids)}
    joints = {}
    for col in C.JOINT_COLUMNS:
        top = C.MAX_SCORE[col]
        values = rng.integers(1, top + 1, size=len(ids))
        joints[col] = np.where(rng.random(len(ids)) < nonzero, values, 0).astype(np.float64)
    erosion = sum(joints[c] for c in C.EROSION_COLUMNS)
    narrowing = sum(joints[c] for c in C.NARROWING_COLUMNS)
    data[C.OVERALL_TOTAL] = erosion + narrowing
    data[C.OVERALL_EROSION] = erosion
    data[C.OVERALL_NARROWING] = narrowing
    data.update(joints)
    df = pd.DataFrame(data, columns=list(C.COLUMNS))
    df[C.PATIENT_COLUMN] = df[C.PATIENT_COLUMN].astype(object)
    return df


def template_frame(ids: list[str]) -> pd.DataFrame:
    """A template like the organisers': every column, score cells empty (as text)."""
    data = {col: [""] * len(ids) for col in C.COLUMNS}
    data[C.PATIENT_COLUMN] = list(ids)
    return pd.DataFrame(data, columns=list(C.COLUMNS), dtype=object)


def write_csv(df: pd.DataFrame, path) -> None:
    """Write a frame as the challenge does: no index, plain text."""
    df.to_csv(path, index=False)


def context_patients(n: int, seed: int, context_matters: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Noisy raw joint predictions and gold scores of ``n`` patients (``[n, 86]`` frames of the joint columns)
    for the patient context model. With ``context_matters`` the scores share a patient severity that the raw
    prediction of one joint sees only through noise."""
    cols = list(C.JOINT_COLUMNS)
    top = np.array([C.SCORE_BY_COLUMN[c].max_score for c in cols], dtype=float)
    rng = np.random.default_rng(seed)
    sev = rng.gamma(0.6, 1.0, size=(n, 1)) if context_matters else np.zeros((n, 1))
    lam = sev + (0.0 if context_matters else 0.4)
    gold = np.minimum(rng.poisson(lam * np.ones((n, len(cols)))), top).astype(float)
    noise = rng.normal(0, 0.6, size=gold.shape)
    raw = np.clip(2 ** (np.log2(gold + 1) + noise) - 1, 0, top)
    return pd.DataFrame(raw, columns=cols), pd.DataFrame(gold, columns=cols)

