"""Run set-up shared by every entry point (detectron2's ``default_setup``): the environment, the arguments,
the configuration, the logging level and the seeds of a run, logged at its start and written beside its
outputs (:func:`start_run`); :func:`environment` is the one description of the machine and the versions
(also kept in every trained model's metadata).

The command line's native-log filter: TensorFlow and absl write their C++ log lines straight to file
descriptor 2 (``I0000 ... port.cc:153] oneDNN custom operations are on ...``,
``W0000 ... Error in PredictCost() ...``), before and regardless of ``TF_CPP_MIN_LOG_LEVEL`` in TensorFlow 2.21,
so Python's ``logging`` cannot silence them. The command line (:func:`ra2.cli.entry`) therefore routes
descriptor 2 through :class:`NativeLogFilter`, which drops those info and warning lines and passes everything
else (our messages, tracebacks, TensorFlow's error lines) unchanged. ``RA2_NATIVE_LOGS=1`` turns the filter off
(to debug TensorFlow itself).
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import platform
import random
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

RUN_FILE = "run.json"
"""What :func:`start_run` writes beside a command's outputs."""

log = logging.getLogger("ra2")


def git_commit() -> str | None:
    """The commit of this code: ``/opt/ra2/GIT_COMMIT`` in the container (the Docker build records it), else
    ``git rev-parse HEAD`` of the source tree, else None."""
    baked = Path("/opt/ra2/GIT_COMMIT")
    if baked.is_file():
        return baked.read_text().strip() or None
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).resolve().parent, capture_output=True,
                             text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def nvidia_smi() -> str | None:
    """``nvidia-smi -L`` (the GPUs the driver sees), or None without the tool."""
    import shutil

    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"failed: {exc}"
    return (out.stdout or out.stderr).strip()


def environment(tensorflow: bool = True) -> dict:
    """Versions, platform and devices. ``tensorflow=False`` leaves out what needs TensorFlow imported (its
    version and the GPUs it sees), for commands that never load a model."""
    import numpy as np
    import pandas as pd

    from ra2 import __version__

    env = {"ra2": __version__, "git_commit": git_commit(), "python": platform.python_version(),
           "platform": platform.platform(), "numpy": np.__version__, "pandas": pd.__version__,
           "cpus": os.cpu_count(), "nvidia_smi": nvidia_smi()}
    if tensorflow:
        import keras
        import tensorflow as tf

        env.update({"tensorflow": tf.__version__, "keras": keras.__version__,
                    "gpus": [d.name for d in tf.config.list_physical_devices("GPU")]})
    return env


class _CurrentStderrHandler(logging.StreamHandler):
    """A stream handler that writes to whatever ``sys.stderr`` is when a record is emitted, not the object it
    was at set-up (which a notebook, a test's capture or a redirection may since have replaced and closed)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value):
        pass


def configure_logging(level: int = logging.INFO) -> None:
    """One logging set-up for every command: ``HH:MM:SS name LEVEL message`` on the current stderr."""
    root = logging.getLogger()
    if not any(getattr(h, "_ra2", False) for h in root.handlers):
        handler = _CurrentStderrHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s", "%H:%M:%S"))
        handler._ra2 = True
        root.addHandler(handler)
    root.setLevel(level)
    # TensorFlow's Python-side warnings (tf.function retracing notices, deprecations) are for its developers
    logging.getLogger("tensorflow").setLevel(max(level, logging.ERROR))


def write_json(path: str | Path, doc: dict) -> Path:
    """Write ``doc`` as indented, key-sorted JSON (other types as ``str``) to ``path`` atomically: a temporary
    file in the same folder (created if needed), then a rename, so a reader never sees half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")  # one per writer
    try:
        tmp.write_text(json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def start_run(command: str, arguments: dict, out_dir: str | Path | None = None, config: dict | None = None,
              seed: int | None = None, tensorflow: bool = True, level: int = logging.INFO) -> dict:
    """Set up a run: logging at ``level``, Python's and NumPy's global generators seeded (every ra2 function
    takes its own seed too), the environment, arguments and configuration logged, and written to
    ``out_dir/run.json`` when ``out_dir`` is given. Returns the record."""
    import numpy as np

    configure_logging(level)
    if seed is not None:
        random.seed(seed)
        np.random.seed(seed % 2**32)
    record = {"command": command, "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in arguments.items()},
              "config": config or {}, "seed": seed, "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
              "environment": environment(tensorflow=tensorflow)}
    env = record["environment"]
    log.info("ra2 %s (git %s), Python %s on %s; TensorFlow %s, GPUs %s", env["ra2"], env["git_commit"] or "unknown",
             env["python"], env["platform"], env.get("tensorflow", "not loaded"), env.get("gpus", "-"))
    log.info("%s %s", command, " ".join(f"{k}={v}" for k, v in record["arguments"].items()))
    if config:
        log.info("config: %s", json.dumps(config, sort_keys=True, default=str))
    if out_dir is not None:
        write_json(Path(out_dir) / RUN_FILE, record)
    return record

# glog/absl prefix: severity letter, MMDD, time, thread id, file:line]
_NATIVE_LINE = re.compile(rb"^[IW]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [\w./-]+:\d+\]")
_NATIVE_NOISE = (
    b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    b"To enable the following instructions:",  # second line of TensorFlow's cpu_feature_guard notice
)


def is_native_noise(line: bytes) -> bool:
    """True for a TensorFlow/absl info or warning log line (or one of their known continuation lines)."""
    return bool(_NATIVE_LINE.match(line)) or line.startswith(_NATIVE_NOISE)


class NativeLogFilter:
    """Route file descriptor 2 through a pipe; a thread forwards every line but the native noise.

    :meth:`close` (also registered with :mod:`atexit`) flushes, restores descriptor 2 and forwards what is
    left, so no message of ours is lost at exit.
    """

    def __init__(self, fd: int = 2):
        self.fd = fd
        self.saved = os.dup(fd)
        read_end, write_end = os.pipe()
        os.dup2(write_end, fd)
        os.close(write_end)
        self._read_end = read_end
        self._thread = threading.Thread(target=self._pump, name="ra2-native-log-filter", daemon=True)
        self._thread.start()
        self.closed = False
        atexit.register(self.close)

    def _forward(self, line: bytes) -> None:
        if not is_native_noise(line):
            os.write(self.saved, line)

    def _pump(self) -> None:
        pending = b""
        while True:
            chunk = os.read(self._read_end, 65536)
            if not chunk:
                break
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                self._forward(line + b"\n")
        if pending:
            self._forward(pending)
        os.close(self._read_end)

    def close(self) -> None:
        """Restore descriptor 2 and forward the remaining lines."""
        if self.closed:
            return
        self.closed = True
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self.saved, self.fd)  # drops the pipe's last write end: the thread reads to EOF and stops
        self._thread.join(timeout=5)


_FILTER: NativeLogFilter | None = None


def quiet_native_logs() -> NativeLogFilter | None:
    """Install the :class:`NativeLogFilter` on descriptor 2 once per process (unless ``RA2_NATIVE_LOGS=1``)."""
    global _FILTER
    if _FILTER is None and os.environ.get("RA2_NATIVE_LOGS") != "1":
        _FILTER = NativeLogFilter()
    return _FILTER
