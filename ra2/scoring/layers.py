"""Layers of the regressors that Keras 3 does not provide in the form the training step needs.

:class:`FusedBatchNormalization` is Keras 3's ``BatchNormalization`` (same variables, names, configuration,
moving-average rule and results) computed on the TensorFlow backend by TensorFlow's fused batch-norm kernel
(``FusedBatchNormV3``: one op forward and one backward) instead of Keras 3's composition of ``moments``,
``batch_normalization`` and the moving-average updates (about ten ops forward and twenty backward per layer).
The regressors are small DenseNets with 40 batch normalisations, so on a CPU their training step is dominated
by per-op overhead, not arithmetic: ``docs/regressors.md`` ("Training step") measures the difference.

Where the fused kernel does not apply (another backend, inputs that are not ``[B, H, W, C]`` with the channels
last, a mask, synchronised or renormalised batch norm) the layer is Keras's own.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="ra2")
class FusedBatchNormalization(keras.layers.BatchNormalization):
    """``keras.layers.BatchNormalization`` over the last axis of ``[B, H, W, C]`` inputs, fused on TensorFlow.

    Training (``training=True`` and the layer trainable): normalises with the batch's mean and biased variance
    over ``B, H, W`` and moves ``moving_mean`` / ``moving_variance`` towards them by ``1 - momentum``, as Keras
    does (TensorFlow's kernel returns the Bessel-corrected variance; it is scaled back by ``(n - 1) / n``,
    ``n = B * H * W``). Inference: normalises with the moving statistics. Output: the inputs' shape and dtype.
    """

    def _fusable(self, inputs, mask) -> bool:
        return (keras.backend.backend() == "tensorflow" and mask is None and len(inputs.shape) == 4
                and self.axis in (-1, 3) and self.center and self.scale and not self.synchronized
                and not getattr(self, "renorm", False))

    def call(self, inputs, training=None, mask=None):
        if not self._fusable(inputs, mask):
            return super().call(inputs, training=training, mask=mask)
        import tensorflow as tf

        x = tf.convert_to_tensor(inputs)
        gamma = tf.cast(self.gamma, "float32")
        beta = tf.cast(self.beta, "float32")
        if training and self.trainable:
            y, mean, variance = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=self.epsilon, data_format="NHWC", is_training=True)
            n = tf.cast(tf.reduce_prod(tf.shape(x)[:3]), "float32")
            variance = variance * (n - 1.0) / tf.maximum(n, 1.0)
            m = self.momentum
            self.moving_mean.assign(self.moving_mean * m + tf.cast(mean, self.moving_mean.dtype) * (1.0 - m))
            self.moving_variance.assign(
                self.moving_variance * m + tf.cast(variance, self.moving_variance.dtype) * (1.0 - m))
        else:
            y, _, _ = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, mean=tf.cast(self.moving_mean, "float32"),
                variance=tf.cast(self.moving_variance, "float32"), epsilon=self.epsilon, data_format="NHWC",
                is_training=False)
        return tf.cast(y, inputs.dtype)
