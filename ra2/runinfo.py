"""Run set-up shared by every entry point: the native-log filter of the command line.

TensorFlow and absl write their C++ log lines straight to file descriptor 2 (``I0000 ... port.cc:153]
oneDNN custom operations are on ...``, ``W0000 ... Error in PredictCost() ...``), before and regardless of
``TF_CPP_MIN_LOG_LEVEL`` in TensorFlow 2.21, so Python's ``logging`` cannot silence them. The command line
(:func:`ra2.cli.entry`) therefore routes descriptor 2 through :class:`NativeLogFilter`, which drops those
info and warning lines and passes everything else (our messages, tracebacks, TensorFlow's error lines)
unchanged. ``RA2_NATIVE_LOGS=1`` turns the filter off (to debug TensorFlow itself).
"""

from __future__ import annotations

import atexit
import os
import re
import sys
import threading

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
