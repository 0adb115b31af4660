"""A screenshot of an HTML page in headless Chromium (Debian's ``chromium`` package): the check that
``report.html`` renders in a real browser, and the picture of it in the README."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from ra2 import Ra2Error

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def find_browser() -> str | None:
    """The first headless-capable Chromium on PATH (:data:`BROWSERS`), or None."""
    for name in BROWSERS:
        path = shutil.which(name)
        if path:
            return path
    return None


def screenshot(html: str | Path, png: str | Path, width: int = 1280, height: int = 1600,
               timeout: float = 120.0) -> Path:
    """Render the local page ``html`` in headless Chromium, offline, and save a ``width`` x ``height`` PNG
    of its top to ``png``. Raises :class:`Ra2Error` when there is no browser or it fails."""
    browser = find_browser()
    if browser is None:
        raise Ra2Error(f"no Chromium found (looked for {', '.join(BROWSERS)}); apt-get install chromium")
    html, png = Path(html).resolve(), Path(png).resolve()
    if not html.is_file():
        raise Ra2Error(f"{html}: no such file")
    png.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ra2-chromium-") as profile:
        cmd = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
               "--no-first-run", "--disable-extensions", f"--user-data-dir={profile}",
               "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",  # no network: offline proof
               f"--window-size={width},{height}", f"--screenshot={png}", html.as_uri()]
        try:
            run = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise Ra2Error(f"{browser}: no screenshot of {html} within {timeout:.0f} s") from None
    if run.returncode != 0 or not png.is_file():
        tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or [""]
        raise Ra2Error(f"{browser}: screenshot of {html} failed (exit {run.returncode}): {tail[0]}")
    return png
