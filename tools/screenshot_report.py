#!/usr/bin/env python3
"""Screenshot a run's report.html in headless Chromium, to check what a reader sees.

usage: python tools/screenshot_report.py RUN_DIR|report.html [--out PNG] [--size W,H]

Runs Debian's /usr/bin/chromium (``apt-get install -y chromium``; add
``fonts-noto-cjk`` for Chinese text) headless, with a throw-away profile, no
network-facing background services, and the page loaded from a file: URL.
report.html is self-contained, so nothing is fetched. Errors print one line and
exit 2.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

DEFAULT_CHROMIUM = "/usr/bin/chromium"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TIMEOUT_S = 120


class ToolError(Exception):
    """A one-line reason the screenshot could not be taken."""


def _html_path(target: Path) -> Path:
    html = target / "report.html" if target.is_dir() else target
    if not html.is_file():
        hint = " (render it with: tongban report DIR)" if (html.parent / "report.json").is_file() else ""
        raise ToolError(f"no report at {html}: expected a run directory holding report.html, "
                        f"or the path of a report.html{hint}")
    return html.resolve()


def _chromium(path: str) -> str:
    found = shutil.which(path)
    if found is None:
        raise ToolError(f"chromium not found at {path}; install it with: apt-get install -y chromium")
    return found


def screenshot(target: Path, out: Path, *, chromium: str = DEFAULT_CHROMIUM, size: str = "1400,2400") -> Path:
    """Write a PNG of the report at ``target`` to ``out``; returns ``out``."""
    html = _html_path(target)
    exe = _chromium(chromium)
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    out.unlink(missing_ok=True)
    with tempfile.TemporaryDirectory(prefix="tongban-chromium-") as profile:
        cmd = [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               "--hide-scrollbars", "--force-device-scale-factor=1", f"--user-data-dir={profile}",
               f"--window-size={size}", f"--screenshot={out}", html.as_uri()]
        try:
            proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, timeout=TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise ToolError(f"chromium did not finish within {TIMEOUT_S} s") from None
    if not out.is_file() or out.read_bytes()[:8] != PNG_SIGNATURE:
        lines = [ln for ln in proc.stderr.decode(errors="replace").splitlines() if ln.strip()]
        last = lines[-1].strip() if lines else "no output"
        raise ToolError(f"chromium exited {proc.returncode} without writing a PNG to {out}: {last}")
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Screenshot a tongban report.html in headless Chromium.")
    p.add_argument("target", type=Path, metavar="RUN_DIR|report.html")
    p.add_argument("--out", type=Path, help="PNG to write (default: RUN_DIR/report-screenshot.png)")
    p.add_argument("--size", default="1400,2400", metavar="W,H", help="window size in px (default 1400,2400)")
    p.add_argument("--chromium", default=DEFAULT_CHROMIUM, help=f"browser binary (default {DEFAULT_CHROMIUM})")
    args = p.parse_args(argv)
    out = args.out or (args.target if args.target.is_dir() else args.target.parent) / "report-screenshot.png"
    try:
        path = screenshot(args.target, out, chromium=args.chromium, size=args.size)
    except ToolError as e:
        print(f"screenshot_report: error: {e}", file=sys.stderr)
        return 2
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
