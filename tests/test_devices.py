"""ra2.devices: the GPU road (mixed precision, XLA, several devices) forced on a CPU.

Mixed precision wraps the optimizer in a LossScaleOptimizer whose ``dynamic_scale`` starts at 2**15; an ensemble
reuses one compiled model for its members, and the member reset must put that scale back (zeroing it made every
member after the first train to NaN). Several devices are two logical CPU devices, in a subprocess (TensorFlow
splits the CPU only before it starts).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from ra2 import Ra2Error, contract, io
from ra2.cli import main
from ra2.devices import DeviceSettings, reset_optimizer
from ra2.profiles import run_profile

from conftest import PHANTOM

REPO = Path(__file__).resolve().parent.parent


def _finite_h5(path: Path) -> bool:
    arrays = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: arrays.append(obj[()]) if isinstance(obj, h5py.Dataset) else None)
    return bool(arrays) and all(np.isfinite(np.asarray(a, dtype=np.float64)).all() for a in arrays)


def test_reset_optimizer_gives_back_the_initial_loss_scale_moments_and_step():
    import keras

    from ra2.scoring.train import _dtype_policy

    keras.utils.set_random_seed(0)  # unseeded, some initial weights overflowed the float16 gradients at the
    # initial loss scale (2 ** 15): those steps were skipped and the step count below was 2, not 4 (flaky)
    with _dtype_policy("mixed_float16"):
        model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3), keras.layers.Dense(1, dtype="float32")])
        model.compile(optimizer=keras.optimizers.Adam(1e-2), loss="mse")
    x = 0.05 * np.random.default_rng(0).normal(size=(16, 4)).astype("float32")  # scaled gradients stay finite
    model.fit(x, x[:, :1], batch_size=8, epochs=2, verbose=0)
    opt = model.optimizer
    assert type(opt).__name__ == "LossScaleOptimizer"
    opt.dynamic_scale.assign(5.0)  # as after a few overflows
    moments = [v for v in opt.variables if v.path.endswith("_momentum")]
    assert int(opt.iterations.numpy()) == 4 and max(float(np.abs(v.numpy()).max()) for v in moments) > 0
    reset_optimizer(opt, model.trainable_variables)
    assert float(opt.dynamic_scale.numpy()) == 2.0 ** 15 and int(opt.step_counter.numpy()) == 0
    assert int(opt.iterations.numpy()) == 0
    assert all(float(np.abs(v.numpy()).max()) == 0.0 for v in moments)
    assert float(opt.learning_rate.numpy()) == pytest.approx(1e-2)  # the configuration is kept


def test_device_settings_refuse_what_they_cannot_do():
    with pytest.raises(Ra2Error, match="devices must be 'all' or a positive number"):
        DeviceSettings(devices="two")
    with pytest.raises(Ra2Error, match="xla must be one of auto, on, off"):
        DeviceSettings(xla="yes")
    with pytest.raises(Ra2Error, match=r"--devices 3: only 1 CPU device"):
        DeviceSettings(devices=3).resolve()
    plain = DeviceSettings().resolve()  # no GPU here: auto means float32, no XLA, one device, no strategy
    assert (plain.mixed_precision, plain.xla, plain.replicas, plain.strategy) == (False, False, 1, None)
    forced = DeviceSettings("on", "on").resolve()
    assert forced.mixed_precision and forced.xla and forced.dtype_policy == "mixed_float16"


def test_run_profile_is_full_on_a_gpu_and_cpu_without_one():
    assert run_profile(None, gpus=1) == ("full", "no RA2_PROFILE; 1 GPU(s) visible")
    assert run_profile(None, gpus=0)[0] == "cpu"
    assert run_profile("smoke", gpus=2) == ("smoke", "RA2_PROFILE=smoke")
    with pytest.raises(Ra2Error, match="unknown profile 'fast'"):
        run_profile("fast", gpus=0)


@pytest.mark.thorough
def test_mixed_precision_and_xla_forced_on_train_finite_members_and_predict(phantom, tmp_path, monkeypatch):
    """The container's GPU settings on a CPU: every member of every 2-fold smoke ensemble has finite weights and
    finite, in-range out-of-fold predictions, and the run's predictions come from the model."""
    monkeypatch.setenv("RA2_PROFILE", "smoke")
    monkeypatch.delenv("RA2_DETECTORS", raising=False)
    out, work = tmp_path / "output", tmp_path / "work"
    assert main(["run", "--train", str(phantom / "train"), "--test", str(phantom / "test"), "--output", str(out),
                 "--work", str(work), "--mixed-precision", "on", "--xla", "on"]) == 0
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["predictions_from"] == "model" and summary["model"]["replicas"] == 1
    assert summary["model"]["profile"] == "smoke" and summary["model"]["profile_reason"] == "RA2_PROFILE=smoke"
    assert summary["model"]["training"]["devices"]["mixed_precision"] is True
    assert io.validate_predictions(out / "predictions.csv", phantom / "test" / "template.csv") == []
    regressors = work / "models" / "regressors"
    for dataset in contract.DATASETS:
        for k in range(2):
            member = regressors / dataset / f"member_{k}"
            meta = json.loads((member / "metadata.json").read_text())
            assert meta["devices"]["mixed_precision"] and meta["devices"]["xla"], meta["devices"]
            assert meta["xla_compiled"] is True  # Keras drops jit_compile silently under op determinism
            assert _finite_h5(member / "model.weights.h5"), f"{member}: non-finite weights"
            oof = np.load(member / "oof.npz")["predictions"]
            assert len(oof) and np.isfinite(oof).all(), f"{member}: out-of-fold predictions {oof}"
            assert oof.min() >= 0.0 and oof.max() <= contract.DATASET_MAX[dataset]


@pytest.mark.thorough
def test_two_logical_cpu_devices_train_with_a_mirrored_strategy_then_predict(phantom, tmp_path):
    """``ra2 train --logical-cpus 2 --devices all``: the members train under a MirroredStrategy over both
    devices with the recipe's batch per replica; one-device ``ra2 predict`` reads the models back."""
    models = tmp_path / "models"
    env = {k: v for k, v in os.environ.items() if k != "RA2_DETECTORS"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-m", "ra2", "train", "--train", str(phantom / "train"), "--models",
                           str(models), "--profile", "smoke", "--logical-cpus", "2", "--devices", "all",
                           "--no-progress"], env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    pipeline = json.loads((models / "pipeline.json").read_text())
    assert pipeline["replicas"] == 2 and pipeline["devices"]["strategy"] == "MirroredStrategy"
    assert pipeline["devices"]["devices"] == ["/device:CPU:0", "/device:CPU:1"]
    for dataset in contract.DATASETS:
        meta = json.loads((models / "regressors" / dataset / "member_1" / "metadata.json").read_text())
        assert meta["devices"]["replicas"] == 2
        assert meta["global_batch_size"] == 2 * meta["train_config"]["batch_size"]
        assert np.isfinite(meta["validation"]["log2_rmse"])
    out = tmp_path / "predicted"
    assert main(["predict", "--test", str(phantom / "test"), "--models", str(models), "--output", str(out),
                 "--no-progress"]) == 0
    frame = io.read_predictions_csv(out / "predictions.csv")
    assert len(frame) == PHANTOM["test_patients"] and np.isfinite(frame[list(contract.JOINT_COLUMNS)]).all().all()


def test_bad_device_arguments_are_one_line_errors(phantom, tmp_path, capsys):
    assert main(["train-regressors", "--train", str(phantom / "train"), "--out", str(tmp_path / "r"),
                 "--profile", "smoke", "--devices", "0"]) == 1
    assert "ra2: error: devices must be 'all' or a positive number of devices, got '0'" in capsys.readouterr().err
