"""FusedBatchNormalization computes what Keras 3's BatchNormalization computes (outputs, gradients, moving
statistics, inference), so members trained with either agree and the faster one changes no result."""

import numpy as np
import pytest

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

from ra2.scoring.layers import FusedBatchNormalization  # noqa: E402


def _pair(shape, momentum=0.9):
    rng = np.random.default_rng(3)
    ref = keras.layers.BatchNormalization(momentum=momentum, epsilon=1.001e-5)
    fused = FusedBatchNormalization(momentum=momentum, epsilon=1.001e-5)
    ref.build(shape)
    fused.build(shape)
    ref.gamma.assign(rng.uniform(0.5, 2.0, shape[-1]).astype("float32"))
    ref.beta.assign(rng.normal(size=shape[-1]).astype("float32"))
    fused.set_weights(ref.get_weights())
    return ref, fused


def test_training_step_matches_keras_outputs_gradients_and_moving_statistics():
    shape = (8, 6, 6, 5)
    x = tf.constant(np.random.default_rng(0).normal(2.0, 3.0, size=shape).astype("float32"))
    ref, fused = _pair(shape)
    # a loss that normalisation does not make constant (sum(y^2) per channel would be)
    weights = tf.constant(np.random.default_rng(1).normal(size=shape).astype("float32"))
    grads = []
    for layer in (ref, fused):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x, training=True)
            loss = tf.reduce_sum(y * weights + 0.1 * y * y * y)
        grads.append((y, *tape.gradient(loss, [x, layer.gamma, layer.beta])))
    for a, b in zip(*grads):
        np.testing.assert_allclose(b.numpy(), a.numpy(), rtol=1e-4, atol=1e-4 * float(np.abs(a).max()))
    # the moving statistics moved by the batch's mean and *biased* variance, as Keras moves them
    np.testing.assert_allclose(fused.moving_mean.numpy(), ref.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance.numpy(), ref.moving_variance.numpy(), rtol=1e-5)
    expected_var = 0.9 * 1.0 + 0.1 * np.var(x.numpy().reshape(-1, 5), axis=0)
    np.testing.assert_allclose(fused.moving_variance.numpy(), expected_var, rtol=1e-5)
    np.testing.assert_allclose(fused(x, training=False).numpy(), ref(x, training=False).numpy(), atol=1e-5)


def test_regressor_networks_use_the_fused_layer_unless_asked_for_keras_and_load_each_others_weights():
    from ra2.profiles import regressor_profile
    from ra2.scoring.models import build_regressor

    net = regressor_profile("smoke").networks["narrowing"]
    fused, plain = build_regressor(net), build_regressor(net.replace(batchnorm="keras"))
    kinds = {type(layer) for layer in fused.layers if isinstance(layer, keras.layers.BatchNormalization)}
    assert kinds == {FusedBatchNormalization}
    assert not any(isinstance(layer, FusedBatchNormalization) for layer in plain.layers)
    plain.set_weights(fused.get_weights())
    x = np.random.default_rng(1).normal(size=(4, net.input_size, net.input_size, 1)).astype("float32")
    np.testing.assert_allclose(plain.predict_on_batch(x), fused.predict_on_batch(x), atol=1e-5)
