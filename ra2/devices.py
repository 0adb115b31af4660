"""Where training runs: mixed precision, XLA and the devices, one code path for 0, 1 or N GPUs.

The three switches come in at the edges (``ra2 train``, ``ra2 train-regressors``, ``ra2 train-detectors``:
``--mixed-precision``, ``--xla``, ``--devices``) as one :class:`DeviceSettings` and are resolved once, when
TensorFlow is loaded, into :class:`Devices`, which the training code is handed:

| switch            | ``auto``                      | ``on``                                   | ``off``   |
|-------------------|-------------------------------|------------------------------------------|-----------|
| mixed precision   | on where a GPU is visible     | ``mixed_float16`` also on a CPU (tests)  | float32   |
| XLA               | on where a GPU is visible     | ``jit_compile`` also on a CPU (tests)    | no XLA    |

``devices``: ``all`` (every visible GPU; on a machine without one, every logical CPU device, which is one
unless a test split the CPU with :func:`split_cpu`) or a count ``N`` (the first N). One device: no
distribution strategy; more: :class:`tf.distribute.MirroredStrategy` over them, the global batch = the
recipe's batch x the replicas. Multi-machine training is not offered: ``MultiWorkerMirroredStrategy`` is
broken with Keras 3 (keras-team/keras#20585).

What each switch does where is in ``docs/pipeline.md`` ("Devices, mixed precision and XLA").
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

from ra2 import Ra2Error

SWITCHES = ("auto", "on", "off")


def check_switch(name: str, value: str) -> str:
    if value not in SWITCHES:
        raise Ra2Error(f"{name} must be one of {', '.join(SWITCHES)}, got {value!r}")
    return value


def check_devices(value) -> str:
    """``"all"`` or a positive count as a string; anything else is a :class:`ra2.Ra2Error`."""
    text = str(value).strip().lower()
    if text == "all":
        return text
    if not text.isdigit() or int(text) < 1:
        raise Ra2Error(f"devices must be 'all' or a positive number of devices, got {value!r}")
    return str(int(text))


@dataclass(frozen=True)
class DeviceSettings:
    """The training switches as given (``auto`` / ``on`` / ``off`` and ``all`` / ``N``), not yet resolved."""

    mixed_precision: str = "auto"
    xla: str = "auto"
    devices: str = "all"

    def __post_init__(self) -> None:
        check_switch("mixed precision", self.mixed_precision)
        check_switch("xla", self.xla)
        object.__setattr__(self, "devices", check_devices(self.devices))

    def to_dict(self) -> dict:
        return {"mixed_precision": self.mixed_precision, "xla": self.xla, "devices": self.devices}

    def resolve(self) -> "Devices":
        """The concrete settings on this machine (imports TensorFlow)."""
        import tensorflow as tf

        gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
        pool = gpus or [d.name for d in tf.config.list_logical_devices("CPU")]
        if self.devices != "all" and int(self.devices) > len(pool):
            raise Ra2Error(f"--devices {self.devices}: only {len(pool)} {'GPU' if gpus else 'CPU'} device(s) "
                           f"visible ({', '.join(pool)})")
        names = pool if self.devices == "all" else pool[:int(self.devices)]
        strategy = tf.distribute.MirroredStrategy(devices=names) if len(names) > 1 else None

        def switch(value: str) -> bool:
            return value == "on" or (value == "auto" and bool(gpus))

        return Devices(mixed_precision=switch(self.mixed_precision), xla=switch(self.xla), names=tuple(names),
                       gpus=len(gpus), strategy=strategy, settings=self)


@dataclass(frozen=True)
class Devices:
    """Resolved settings: ``mixed_precision`` (``mixed_float16`` layers, float32 variables, loss scaling),
    ``xla`` (``jit_compile``), ``names`` (the devices trained on), ``gpus`` (GPUs visible), ``strategy`` (a
    ``MirroredStrategy`` when more than one device, else None)."""

    mixed_precision: bool = False
    xla: bool = False
    names: tuple[str, ...] = ()
    gpus: int = 0
    strategy: object = None
    settings: DeviceSettings = field(default_factory=DeviceSettings)

    @property
    def replicas(self) -> int:
        return max(1, len(self.names)) if self.strategy is not None else 1

    @property
    def dtype_policy(self) -> str:
        return "mixed_float16" if self.mixed_precision else "float32"

    def scope(self):
        """The strategy's scope (variables created in it are mirrored), or a no-op without a strategy."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def to_dict(self) -> dict:
        """What pipeline.json and run_summary.json record."""
        return {"requested": self.settings.to_dict(), "mixed_precision": self.mixed_precision, "xla": self.xla,
                "replicas": self.replicas, "devices": list(self.names), "gpus": self.gpus,
                "strategy": type(self.strategy).__name__ if self.strategy is not None else None}


CPU_ONLY = Devices()
"""float32, no XLA, one device: what the library uses when no settings are passed in and none resolved."""


def split_cpu(n: int) -> None:
    """Split the CPU into ``n`` logical devices (tests of the multi-device road without a GPU; the CLI's
    test-only ``--logical-cpus N``). Must run before TensorFlow initialises its devices: a
    :class:`ra2.Ra2Error` says so otherwise."""
    import tensorflow as tf

    if n < 1:
        raise Ra2Error(f"--logical-cpus must be at least 1, got {n}")
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * n)
    except RuntimeError as exc:
        if len(tf.config.list_logical_devices("CPU")) != n:
            raise Ra2Error(f"cannot split the CPU into {n} devices after TensorFlow started: {exc}") from exc


def reset_optimizer(optimizer, variables) -> None:
    """Give a built Keras ``optimizer`` its initial state in place, for the trainable ``variables`` it was
    built on: every optimizer variable (step count, moments, a ``LossScaleOptimizer``'s ``dynamic_scale``
    and ``step_counter``) takes its value in a newly built optimizer of the same configuration.

    In place, because a compiled training step holds these variables; zeroing them instead sets the loss
    scale to 0, and the next member trains to NaN under mixed precision.
    """
    strategy = getattr(optimizer, "_distribution_strategy", None)  # the TensorFlow backend's optimizers have one
    with strategy.scope() if strategy is not None else contextlib.nullcontext():
        fresh = type(optimizer).from_config(optimizer.get_config())
        fresh.build(variables)
    old, new = list(optimizer.variables), list(fresh.variables)

    def key(v):
        return (v.path.rsplit("/", 1)[-1], tuple(v.shape))  # the scopes above the name differ

    if [key(v) for v in old] != [key(v) for v in new]:
        raise RuntimeError(f"optimizer state does not match a fresh {type(optimizer).__name__}: "
                           f"{[key(v) for v in old][:4]} ... vs {[key(v) for v in new][:4]} ...")
    for target, value in zip(old, new):
        target.assign(value.value)
