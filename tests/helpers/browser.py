"""Open an HTML file in headless Chromium: the DOM after scripts ran, or a screenshot.

Used by the report tests to check that pages render in a real browser. The Makefile installs
Debian's `chromium` for `make test`; without a browser the tests that need one skip.
"""
from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
FALLBACK_PATHS = ("/usr/bin/chromium", "/usr/lib/chromium/chromium")
TIMEOUT_S = 60

# Offline and quiet: a report must render from the file alone, so nothing may phone home.
# The virtual time budget lets pending tasks (image error handlers, our filter script) run
# before the DOM is dumped.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-dev-shm-usage", "--disable-extensions", "--hide-scrollbars",
         "--virtual-time-budget=3000")


def find_chromium() -> str | None:
    for name in CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return next((p for p in FALLBACK_PATHS if Path(p).is_file()), None)


def chromium_or_skip() -> str:
    path = find_chromium()
    if path is None:
        pytest.skip("no Chromium found (looked for chromium, chromium-browser, google-chrome on PATH and "
                    "/usr/bin/chromium); `apt-get install chromium` to run the browser tests")
    return path


def _run(args: list[str], binary: str) -> str:
    with tempfile.TemporaryDirectory(prefix="evalkit-chromium-") as profile:
        proc = subprocess.run([binary, *FLAGS, f"--user-data-dir={profile}", *args],
                              capture_output=True, text=True, timeout=TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"chromium exited {proc.returncode}: {proc.stderr[-2000:]}")
    return proc.stdout


def dump_dom(html_path: Path, binary: str | None = None) -> str:
    """The page's DOM serialized after load and scripts, as Chromium's --dump-dom prints it."""
    binary = binary or chromium_or_skip()
    return _run(["--dump-dom", Path(html_path).resolve().as_uri()], binary)


def screenshot(html_path: Path, png_path: Path, *, width: int = 1280, height: int = 2400,
               binary: str | None = None) -> Path:
    """A PNG of the page's first `height` pixels at `width` CSS pixels."""
    binary = binary or chromium_or_skip()
    png_path = Path(png_path).resolve()
    _run([f"--screenshot={png_path}", f"--window-size={width},{height}", Path(html_path).resolve().as_uri()],
         binary)
    if not png_path.is_file():
        raise RuntimeError(f"chromium wrote no screenshot to {png_path}")
    return png_path
