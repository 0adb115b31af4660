"""bench/profile_cost.py: the FLOP counts behind the ``full`` profile's time estimate, and the estimate itself."""

import json
from pathlib import Path

import profile_cost
import pytest
from bench_regressors import conv_flops

from ra2.profiles import regressor_profile
from ra2.scoring.models import build_regressor

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


@pytest.mark.parametrize("profile", ["cpu", "full"])
def test_layer_count_agrees_with_tensorflows_profiler(profile):
    """The analytic count (convolutions and dense layers) against TensorFlow's profiler on the traced graph, which
    also counts BatchNorm and additions: within 3%."""
    import tensorflow as tf

    net = regressor_profile(profile).networks["narrowing"]
    model = build_regressor(net)
    fn = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec((1, net.input_size, net.input_size, 1), tf.float32))
    opts = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    opts["output"] = "none"
    info = tf.compat.v1.profiler.profile(graph=fn.graph, run_meta=tf.compat.v1.RunMetadata(), cmd="op", options=opts)
    assert conv_flops(model) == pytest.approx(info.total_float_ops, rel=0.03)


def test_estimate_counts_every_member_step_with_the_slowest_floor():
    regressors = {"a": {"gflop_per_step": 10.0, "members": 5, "steps_per_member": 100, "forward_tflop": 2.0},
                  "b": {"gflop_per_step": 1.0, "members": 5, "steps_per_member": 200, "forward_tflop": 0.0}}
    gpu = {"p a": {"step_ms": 2.0}, "p b": {"step_ms": 4.0}}  # a: FLOP-bound (5 ms at 2 TFLOP/s); b: 4 ms floor
    cpu = {"p b": {"augment_ms": 6.0}}  # b: the augmentation thread is slower still
    est = profile_cost.estimate(regressors, 2.0, gpu, "p", {"hand": 0.0, "foot": 1.0}, cpu)
    assert est["regressor_training_s"] == round(5 * 100 * 0.005 + 5 * 200 * 0.006)  # 2.5 + 6
    assert est["forward_passes_s"] == 1  # 2 TFLOP at 2 TFLOP/s
    assert est["detection_s"] == 2 * (367 + 188)  # foot films at 1 s each
    assert est["total_s"] == est["detection_s"] + 9 + 1


def test_full_fits_the_fast_lane_with_a_margin():
    """The committed measurements (H200 step times, this CPU's augmentation) and the FLOP counts of today's
    ``full``: one GPU at 2 TFLOP/s trains and predicts the challenge within half the fast lane's 4 hours."""
    gpu = json.loads((RESULTS / "h200_regressor_steps_mixed.json").read_text())["networks"]
    cpu = json.loads((RESULTS / "cpu_regressor_steps.json").read_text())["networks"]
    reg = profile_cost.regressor_costs("full")
    est = profile_cost.estimate(reg, 2.0, gpu, "full", profile_cost.DEFAULT_SECONDS_PER_FILM, cpu)
    assert est["share_of_limit"]["fast lane"] < 0.5, est
    steps = sum(r["members"] * r["steps_per_member"] for r in reg.values())
    assert steps == 5 * (60 + 160 + 60) * 50  # 5 folds x epochs x 50 steps
