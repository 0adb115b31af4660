"""A trained k-fold ensemble of one data set: load members, average their predictions, threshold.

One network is built once; the members' weights are swapped in turn (flat memory, as nnU-Net does with
its folds). Optional test-time augmentation averages over deterministic views
(:func:`ra2.scoring.predict.tta_views`).

Per-joint uncertainty: every member scores every view, giving ``[M, V, N]`` predictions
(:meth:`Ensemble.member_view_predictions`); the prediction is their mean, the **spread** their standard
deviation (population, ddof 0) after clipping to the score range, in score units
(:meth:`Ensemble.predict_with_spread`, :func:`predict_joints_with_spread`).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ra2 import Ra2Error
from ra2.models_folder import CONFIG_FILE, ENSEMBLE_FILE, WEIGHTS_FILE
from ra2.profiles import RegressorConfig
from ra2.scoring.models import build_regressor
from ra2.scoring.predict import TTA_VIEWS, predict_images, tta_views
from ra2.scoring.thresholds import apply_threshold


class Ensemble:
    """The members of ``folder`` (``ensemble.json`` + ``member_<k>/{config.json, model.weights.h5}``).

    Attributes: ``dataset``, ``threshold`` (zero cut-off), ``config`` (the members' shared network
    config), ``input_size``, ``margin``, ``member_dirs``.
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        spec_path = self.folder / ENSEMBLE_FILE
        if not spec_path.is_file():
            raise Ra2Error(f"{spec_path}: no such file (not a trained ensemble folder)")
        try:
            self.spec = json.loads(spec_path.read_text())
        except json.JSONDecodeError as exc:
            raise Ra2Error(f"{spec_path}: not valid JSON: {exc}") from exc
        self.member_dirs = [self.folder / m for m in self.spec["members"]]
        for m in self.member_dirs:
            for name in (CONFIG_FILE, WEIGHTS_FILE):
                if not (m / name).is_file():
                    raise Ra2Error(f"{m / name}: missing ensemble member file")
        self.config = RegressorConfig.from_json(self.member_dirs[0] / CONFIG_FILE)
        for m in self.member_dirs[1:]:
            if RegressorConfig.from_json(m / CONFIG_FILE) != self.config:
                raise Ra2Error(f"{m / CONFIG_FILE}: members of one ensemble must share one network config")
        self.dataset = self.spec["dataset"]
        self.threshold = float(self.spec["threshold"])
        self.input_size = int(self.config.input_size)
        self.margin = float(self.spec.get("margin", 0.2))
        self._model = None

    @classmethod
    def load(cls, folder: str | Path) -> "Ensemble":
        return cls(folder)

    def _network(self):
        if self._model is None:
            self._model = build_regressor(self.config)
        return self._model

    def member_network(self, member_dir: str | Path):
        """The shared network with the weights of ``member_dir`` (one of :attr:`member_dirs`) loaded."""
        model = self._network()
        model.load_weights(str(Path(member_dir) / WEIGHTS_FILE))
        return model

    def member_view_predictions(self, images: np.ndarray, tta: bool = False, batch_size: int = 128,
                                views=TTA_VIEWS) -> np.ndarray:
        """``[M, V, N]`` raw predictions of every member (M) on every view (V: the test-time ``views`` with
        ``tta``, else only the crop itself) of raw crops ``[N, s, s]``; not clipped."""
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != 3 or images.shape[1:] != (self.input_size, self.input_size):
            raise ValueError(f"expected crops [N, {self.input_size}, {self.input_size}], got {images.shape}")
        seen = tta_views(images, views) if tta else [images]
        out = np.zeros((len(self.member_dirs), len(seen), len(images)))
        for i, m in enumerate(self.member_dirs):
            model = self.member_network(m)
            for j, view in enumerate(seen):
                out[i, j] = predict_images(model, view, batch_size)
        return out

    def predict_raw(self, images: np.ndarray, tta: bool = False, batch_size: int = 128,
                    views=TTA_VIEWS) -> np.ndarray:
        """``[N]`` member-averaged (and view-averaged with ``tta``) predictions for raw crops ``[N, s, s]``."""
        return self.member_view_predictions(images, tta, batch_size, views).mean(axis=(0, 1))

    def predict_with_spread(self, images: np.ndarray, tta: bool | None = None, cut: bool = True,
                            batch_size: int = 128) -> tuple[np.ndarray, np.ndarray]:
        """``([N] scores, [N] spread)`` for raw crops ``[N, s, s]``.

        Scores: :meth:`predict` (``cut``) or :meth:`predict_clipped` (not ``cut``), from one pass of the
        networks. Spread: the standard deviation (ddof 0) over the ``M x V`` member-view predictions, each
        clipped to the score range, in score units (0 for a one-member ensemble without ``tta``).
        """
        each = np.clip(self.member_view_predictions(images, self.uses_tta(tta), batch_size), 0.0,
                       self.config.max_score)
        mean = np.clip(each.mean(axis=(0, 1)), 0.0, self.config.max_score) if len(images) else np.zeros(0)
        spread = each.reshape(-1, len(images)).std(axis=0) if len(images) else np.zeros(0)
        return (apply_threshold(mean, self.threshold) if cut else mean), spread

    def uses_tta(self, tta: bool | None = None) -> bool:
        """Whether predictions average the test-time views: ``tta`` when given, else the ensemble's
        recorded choice (``ensemble.json``)."""
        return bool(self.spec.get("tta", False)) if tta is None else bool(tta)

    def predict_clipped(self, images: np.ndarray, tta: bool | None = None, batch_size: int = 128) -> np.ndarray:
        """``[N]`` averaged scores clipped to the score range, before the zero cut-off (what the patient
        context stage takes). ``tta``: None follows the ensemble's setting."""
        raw = self.predict_raw(images, tta=self.uses_tta(tta), batch_size=batch_size)
        return np.clip(raw, 0.0, self.config.max_score)

    def predict(self, images: np.ndarray, tta: bool | None = None, batch_size: int = 128) -> np.ndarray:
        """``[N]`` final scores: averaged, clipped to the score range, values below the threshold set to 0."""
        return apply_threshold(self.predict_clipped(images, tta=tta, batch_size=batch_size), self.threshold)


def load_ensembles(folder: str | Path) -> dict[str, Ensemble]:
    """Every ensemble under ``folder`` (``<dataset>/ensemble.json``), keyed by data set."""
    folder = Path(folder)
    found = {p.parent.name: Ensemble(p.parent) for p in sorted(folder.glob("*/ensemble.json"))}
    if not found:
        raise Ra2Error(f"{folder}: no trained ensembles (<dataset>/ensemble.json) found")
    return found


def predict_joints_with_spread(ensembles: dict[str, "Ensemble"], crop_sets: dict, patient_ids,
                               tta: bool | None = None, context=None, failures: dict | None = None):
    """:func:`predict_joints` and the spread of each joint, from one pass of the networks.

    Arguments as :func:`predict_joints`. Returns ``(frame, spread)``: ``frame`` as :func:`predict_joints`;
    ``spread`` a DataFrame of the same shape (``Patient_ID`` + 86 joints) holding each joint's member-view
    spread (:meth:`Ensemble.predict_with_spread`, score units, before the context model and the zero
    cut-off); NaN for a joint without a crop or whose data set's ensemble failed.
    """
    from ra2 import contract
    from ra2.scoring.aggregate import joint_frame

    pids = [str(p) for p in patient_ids]
    row = {p: i for i, p in enumerate(pids)}
    joints = {c: np.full(len(pids), np.nan) for c in contract.JOINT_COLUMNS}
    spreads = {c: np.full(len(pids), np.nan) for c in contract.JOINT_COLUMNS}
    for dataset, crops in crop_sets.items():
        if len(crops) == 0:
            continue
        if dataset not in ensembles:
            raise Ra2Error(f"no trained ensemble for data set {dataset!r}")
        try:
            pred, spread = ensembles[dataset].predict_with_spread(crops.images, tta=tta, cut=context is None)
        except Exception as exc:  # noqa: BLE001
            if failures is None:
                raise
            failures[dataset] = f"{type(exc).__name__}: {exc}"
            continue
        for p, c, v, s in zip(crops.patient_ids, crops.columns, pred, spread):
            if str(p) in row:
                joints[str(c)][row[str(p)]] = v
                spreads[str(c)][row[str(p)]] = s
    frame = joint_frame(pids, joints)
    return (context.apply(frame) if context is not None else frame), joint_frame(pids, spreads)


def predict_joints(ensembles: dict[str, "Ensemble"], crop_sets: dict, patient_ids, tta: bool | None = None,
                   context=None, failures: dict | None = None):
    """Joint predictions of every patient from per-data-set crops.

    Args:
        ensembles: data set -> :class:`Ensemble` (see :func:`load_ensembles`).
        crop_sets: data set -> :class:`ra2.scoring.data.CropSet` of the patients' crops (labels unused).
        patient_ids: ``[P]`` patients, the output row order.
        context: optional :class:`ra2.scoring.context.ContextModel`: the ensembles' raw (clipped, not cut)
            predictions are corrected with the patient's other joints and cut with the context model's
            thresholds (a joint without a crop enters it as the model's fill value and leaves it corrected).
        failures: when given, a data set whose ensemble fails on its crops is recorded as
            ``failures[dataset] = message`` and its joints stay NaN; when None, the error propagates.

    Returns:
        DataFrame ``[P, 1 + 86]`` (:func:`ra2.scoring.aggregate.joint_frame`): ``Patient_ID`` and the joints;
        NaN for a joint without a crop when there is no context model. No ``Overall_*`` columns: the caller
        fills what is missing, then adds them once (:meth:`ra2.scoring.context.ContextModel.overall`, or
        :func:`ra2.contract.add_overall` without a context model).
    """
    return predict_joints_with_spread(ensembles, crop_sets, patient_ids, tta=tta, context=context,
                                      failures=failures)[0]
