"""The container contract, run for real: ``run.sh`` on a small phantom challenge as the container runs it.

As user ``nobody`` when the tests run as root and ``nobody`` can run the checkout's Python (otherwise as the
current user); where the machine allows (root, ``unshare -m -n``), in a private mount namespace whose whole
file system is read-only except the output folder and a private ``$TMPDIR``, and a network namespace with no
interface (under ``CI=true`` both are required: the test fails, naming what is missing, instead of falling
back); ``$HOME`` unwritable; and a socket guard in every case (an audit hook that refuses ``socket.connect`` /
``getaddrinfo`` and reports the attempt). Then: ``ra2 validate`` accepts the CSV, ``run_summary.json`` says the
predictions are the model's, no connection was attempted, the inputs are unchanged, and nothing was written
outside the output folder and the private tmp.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ra2.cli import main

from conftest import PHANTOM, strict

ROOT = Path(__file__).resolve().parents[1]
NOBODY = 65534
GUARD = '''import os, sys
def _no_network(event, args):
    if event in ("socket.connect", "socket.getaddrinfo", "socket.sendto"):
        with open(os.environ["RA2_NETWORK_LOG"], "a") as fh:
            fh.write(f"{event} {args!r}\\n")
        raise OSError(f"network access refused by the container-contract test: {event}")
sys.addaudithook(_no_network)
'''


def _tree_digest(folder: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        h.update(str(p.relative_to(folder)).encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


def _works(cmd) -> bool:
    try:
        return subprocess.run(cmd, capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def _as_nobody(cmd) -> list[str]:
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *cmd]


def _files_by(uid: int, roots, exclude) -> list[str]:
    found = []
    for root in roots:
        for dirpath, dirnames, filenames in os.walk(root):
            here = Path(dirpath)
            dirnames[:] = [d for d in dirnames if not any((here / d) == e for e in exclude)]
            for name in dirnames + filenames:
                p = here / name
                try:
                    if p.lstat().st_uid == uid:
                        found.append(str(p))
                except OSError:
                    pass
    return found


@pytest.mark.thorough
def test_run_sh_keeps_the_container_contract(phantom, tmp_path):
    base = tmp_path / "contract"
    inputs, out, private_tmp, guard = base / "inputs", base / "output", base / "tmp", base / "guard"
    for d in (inputs, out, private_tmp, guard):
        d.mkdir(parents=True)
    shutil.copytree(phantom / "train", inputs / "train")
    shutil.copytree(phantom / "test", inputs / "test")
    (guard / "sitecustomize.py").write_text(GUARD)
    network_log = private_tmp / "network-attempts.log"
    before = _tree_digest(inputs)

    python_bin = Path(sys.executable).parent
    probe = ["bash", "-c", f'exec "{sys.executable}" -c "import ra2.pipeline.predict"']
    nobody = os.geteuid() == 0 and shutil.which("setpriv") is not None and _works(_as_nobody(probe))
    if nobody:
        for d in (base, out, private_tmp, guard):
            os.chmod(d, 0o755)
        for d in (out, private_tmp):
            os.chown(d, NOBODY, NOBODY)
        os.chmod(private_tmp, 0o700)
        for parent in list(base.parents)[:3]:  # pytest's own tmp folders are 0700
            os.chmod(parent, os.stat(parent).st_mode | 0o711)
    env = {"PATH": f"{python_bin}:/usr/local/bin:/usr/bin:/bin", "HOME": "/nonexistent", "TMPDIR": str(private_tmp),
           "PYTHONPATH": str(guard), "RA2_NETWORK_LOG": str(network_log), "RA2_PROFILE": "smoke",
           "RA2_TRAIN": str(inputs / "train"), "RA2_TEST": str(inputs / "test"), "RA2_OUTPUT": str(out),
           "RA2_WORK": str(private_tmp / "work"), "RA2_PYTHON": sys.executable, "LANG": "C.UTF-8"}
    run = ["bash", str(ROOT / "run.sh")]
    if nobody:
        run = _as_nobody(run)
    # Strongest where the machine allows it: a private mount namespace in which the whole file system is
    # read-only except the output folder and the private tmp, and a network namespace with no interface.
    read_only = os.geteuid() == 0 and _works(["unshare", "-m", "-n", "bash", "-c", "mount -o remount,bind,ro /"])
    network_namespace = read_only or _works(["unshare", "-n", "true"])
    if strict():  # CI runs the strong form or fails, naming what the machine lacks
        missing = [what for what, ok in (
            ("a read-only file system (needs root and `unshare -m -n` with `mount -o remount,bind,ro /`)", read_only),
            ("an empty network namespace (needs `unshare -n`)", network_namespace)) if not ok]
        assert not missing, ("CI=true: the container contract cannot run in its strong form; missing: "
                             + "; ".join(missing))
    if read_only:
        script = (f"mount --bind '{out}' '{out}' && mount --bind '{private_tmp}' '{private_tmp}' && "
                  f"mount -o remount,bind,ro / && exec " + " ".join(f"'{a}'" for a in run))
        cmd = ["unshare", "-m", "-n", "bash", "-c", script]
    elif network_namespace:
        cmd = ["unshare", "-n", *run]
    else:
        cmd = run
    done = subprocess.run(cmd, env=env, cwd=str(private_tmp), capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]

    assert main(["validate", "--predictions", str(out / "predictions.csv"),
                 "--template", str(inputs / "test" / "template.csv")]) == 0
    summary = json.loads((out / "run_summary.json").read_text())
    assert summary["status"] == "ok" and summary["predictions_from"] == "model", summary.get("model_error")
    assert summary["model"]["prediction"]["films_read"] == 4 * PHANTOM["test_patients"]
    assert summary["model"]["profile"] == "smoke"
    assert not network_log.exists(), network_log.read_text()
    assert "Error fetching version info" not in done.stderr
    assert _tree_digest(inputs) == before
    assert sorted(p.name for p in out.iterdir()) == ["predictions.csv", "run.json", "run_summary.json"]
    if nobody:  # every file the run made is in the output folder or the private tmp
        strays = _files_by(NOBODY, ["/tmp", "/var/tmp", "/dev/shm", str(ROOT), str(base)],
                           exclude=[out, private_tmp])
        assert strays == []
    print(f"contract run as {'nobody' if nobody else 'the current user'}; file system read-only but for the "
          f"output and tmp: {read_only}; network namespace: {network_namespace}; socket guard: always")


def test_importing_ra2_keeps_its_libraries_off_the_network(tmp_path):
    """Without ``NO_ALBUMENTATIONS_UPDATE`` in the environment, albumentations asks PyPI for its latest version
    at import; ``import ra2`` first sets it, so nothing tries to connect (the guard would record it)."""
    (tmp_path / "sitecustomize.py").write_text(GUARD)
    log = tmp_path / "attempts.log"
    env = {k: v for k, v in os.environ.items() if k != "NO_ALBUMENTATIONS_UPDATE"}
    env.update(PYTHONPATH=str(tmp_path), RA2_NETWORK_LOG=str(log))
    code = ("import ra2, albumentations, ra2.scoring.augment, ra2.pipeline.predict, ra2.pipeline.train, "
            "ra2.detection.detect")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not log.exists(), log.read_text()
    # the guard works: the same import without ra2 first is caught
    subprocess.run([sys.executable, "-c", "import albumentations"], env=env, capture_output=True, timeout=300)
    assert "socket.getaddrinfo" in log.read_text()
