"""The screenshots in docs/dashboard.md: the dashboard in headless Chromium during `cairn demo`.

`python tools/dashboard_shots.py` runs the demo (simulated players dig a hunt), signs in with its
one-time link, bars a player through the dialog, and writes docs/img/dashboard.png (the dashboard)
and docs/img/dashboard-action.png (a confirmation dialog), each quantized to 256 colours.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image
from playwright.sync_api import expect, sync_playwright

IMG = Path(__file__).resolve().parents[1] / "docs" / "img"
VIEWPORT = {"width": 1400, "height": 860}


def demo_link(proc: subprocess.Popen[str]) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        m = re.search(r"(http://\S+/dashboard#login=\S+)", proc.stdout.readline())
        if m:
            return m.group(1)
    raise RuntimeError("the demo printed no login link")


def save(png: bytes, name: str) -> None:
    path = IMG / name
    path.write_bytes(png)
    Image.open(path).convert("RGB").quantize(256).save(path, optimize=True)
    print("wrote", path)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "cairn", "demo", "--plain", "--seconds", "120", "--players", "60",
               "--port", "0", "--data-dir", str(Path(tmp) / "data")]  # fmt: skip
        env = {k: v for k, v in os.environ.items() if not k.startswith("CAIRN_")}
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
        try:
            link = demo_link(proc)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", headless=True, args=["--no-sandbox"])
                page = browser.new_page(viewport=VIEWPORT)
                page.goto(link)
                expect(page.locator("#app")).to_be_visible()
                page.wait_for_timeout(12_000)  # finds, dig heat and health samples build up
                page.fill("#player-name", "player017")
                page.click("#player-bar")
                page.fill("#confirm-reason", "x-ray mod, ticket 812")
                page.click("#confirm-ok")
                expect(page.locator("#audit tbody tr")).to_have_count(1)
                page.wait_for_timeout(4_500)  # the notice fades
                save(page.screenshot(), "dashboard.png")
                page.click("#hunt-end")
                page.fill("#confirm-reason", "closing early for the server restart")
                save(page.screenshot(), "dashboard-action.png")
                browser.close()
        finally:
            proc.terminate()
            proc.wait(20)


if __name__ == "__main__":
    main()
