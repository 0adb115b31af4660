"""The command line keeps TensorFlow's native info/warning lines out of the terminal, and nothing else."""

import os
import subprocess
import sys
import textwrap

from ra2.runinfo import is_native_noise


def test_native_noise_lines_are_recognised_and_ours_are_not():
    noise = [b"I0000 00:00:1795991804.275079    4632 port.cc:153] oneDNN custom operations are on.\n",
             b"W0000 00:00:1795991787.697506    4561 op_level_cost_estimator.cc:699] Error in PredictCost()\n",
             b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
             b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow\n"]
    kept = [b"ra2: error: /x/training.csv: missing\n", b"Traceback (most recent call last):\n",
            b"E0000 00:00:1795991787.697506    4561 cuda_dnn.cc:8310] Unable to register cuDNN factory\n",
            b"[demo] scores -> demo_out/scores.json\n", b"I0 this is not a log line\n"]
    assert all(is_native_noise(line) for line in noise)
    assert not any(is_native_noise(line) for line in kept)


def test_filter_drops_native_lines_written_to_fd2_and_keeps_the_rest():
    child = textwrap.dedent("""
        import os, sys
        from ra2.runinfo import quiet_native_logs
        quiet_native_logs()
        os.write(2, b"I0000 00:00:1795991804.275079    4632 port.cc:153] oneDNN custom operations are on.\\n")
        os.write(2, b"W0000 00:00:1.5    4561 op_level_cost_estimator.cc:699] Error in PredictCost()\\n")
        print("ra2: error: kept", file=sys.stderr)
        os.write(2, b"partial line at exit")
    """)
    env = {k: v for k, v in os.environ.items() if k != "RA2_NATIVE_LOGS"}
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, env=env, timeout=60)
    assert proc.returncode == 0
    assert proc.stderr == b"ra2: error: kept\npartial line at exit"
    proc = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=60,
                          env=dict(env, RA2_NATIVE_LOGS="1"))
    assert proc.stderr.count(b"0000 00:00:") == 2  # switched off: everything passes


def test_run_log_follows_the_current_stderr(monkeypatch):
    """The handler set up once keeps working when stderr is replaced and the old stream closed (notebooks,
    captured test output, later commands in one process)."""
    import io
    import logging

    from ra2.runinfo import configure_logging

    first = io.StringIO()
    monkeypatch.setattr("sys.stderr", first)
    configure_logging()
    first.close()
    second = io.StringIO()
    monkeypatch.setattr("sys.stderr", second)
    logging.getLogger("ra2.test").info("after the first stream closed")
    assert "after the first stream closed" in second.getvalue()
