"""Headless Chromium driven by Selenium (Debian's ``chromium`` and ``chromium-driver``, no download, no network),
and ``ra2 review`` run as a real server process, for the review page's browser tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from conftest import require

CHROMIUM = ("chromium", "chromium-browser", "google-chrome")
DRIVERS = ("chromedriver", "chromium-driver")


@contextmanager
def chrome(width: int = 1400, height: int = 1000):
    """A headless Chromium under Selenium; skips (fails under ``CI=true``) when the driver, the browser or
    Selenium is missing or the browser does not start. Everything but 127.0.0.1 goes to a dead proxy."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        require("the review page's browser test", "selenium is not installed (pip install -e '.[test]')")
    browser = next((shutil.which(n) for n in CHROMIUM if shutil.which(n)), None)
    driver_path = next((shutil.which(n) for n in DRIVERS if shutil.which(n)), None)
    if browser is None or driver_path is None:
        require("the review page's browser test",
                f"no {'Chromium' if browser is None else 'chromedriver'} on PATH (apt-get install chromium "
                f"chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
                "--disable-extensions", f"--window-size={width},{height}", "--proxy-server=127.0.0.1:9"):
        options.add_argument(arg)
    try:  # an explicit driver path: Selenium Manager (which would download one) never runs
        driver = webdriver.Chrome(service=Service(driver_path), options=options)
    except WebDriverException as exc:
        require("the review page's browser test", f"Chromium did not start under {driver_path}: "
                f"{str(exc).splitlines()[0]}")
    try:
        yield driver
    finally:
        driver.quit()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``python -m ra2 review ...`` in its own process: :meth:`start` waits for its address line, :meth:`kill`
    sends SIGKILL (no clean-up of any kind: what was accepted must already be on disk)."""

    def __init__(self, args: list[str], port: int, log: Path):
        self.args, self.port, self.log = args, port, log
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self, timeout: float = 60.0) -> ServerProcess:
        env = dict(os.environ)
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
        with open(self.log, "ab") as fh:
            self.proc = subprocess.Popen([sys.executable, "-m", "ra2", "review", *self.args, "--port", str(self.port)],
                                         stdout=fh, stderr=subprocess.STDOUT, env=env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"ra2 review exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")
            if self.url in self.log.read_text():
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                        return self
                except OSError:
                    pass
            time.sleep(0.1)
        self.kill()
        raise AssertionError(f"ra2 review did not answer within {timeout:.0f} s: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)
        # a new server will print the same address line: forget the old one
        self.log.write_text("")


def wait_for(driver, script: str, timeout: float = 30.0):
    """Poll ``return <script>`` until it is truthy; returns its value."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = driver.execute_script(f"return {script}")
        if value:
            return value
        time.sleep(0.05)
    msg = driver.execute_script("return document.querySelector('#msg').textContent")
    raise AssertionError(f"page: `{script}` still false after {timeout:.0f} s; message: {msg!r}")


def load(driver, url=None):
    """Open ``url`` (None: reload the page) and wait until the page has shown its first patient."""
    if url:
        driver.get(url)
    else:
        driver.refresh()
    wait_for(driver, "document.body.dataset.ready === '1'")


def keys(driver, *sequence):
    """Type ``sequence`` (characters or Selenium ``Keys``) into the page, as a person at the keyboard would."""
    from selenium.webdriver.common.action_chains import ActionChains

    chain = ActionChains(driver)
    for k in sequence:
        chain.send_keys(k)
    chain.perform()


def settle(driver, n: int):
    """Wait until the page has answered its ``n``-th action since it loaded (``body[data-done]``)."""
    wait_for(driver, f"document.body.dataset.done === '{n}'")
