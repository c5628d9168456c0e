"""`make play`: Cairn and a Minecraft server with a running treasure hunt, to join with the game.

Starts `cairn serve` (embedded store, data in .play/), then the flying-squid server with the Cairn
plugin (integrations/minecraft/server.js), creates a hunt around spawn and prints how to join.
Ctrl-C stops both. Ports: PLAY_CAIRN_PORT (7420), PLAY_MC_PORT (25565); PLAY_HOST (127.0.0.1) is
the address the Minecraft server listens on (0.0.0.0 to let other machines join).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
MC_DIR = ROOT / "integrations" / "minecraft"
VERSION = "1.21.4"
WORLD = "overworld"


def request(url: str, key: str, method: str = "GET", body: Any = None) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method)
    req.add_header("Authorization", f"Bearer {key}")
    req.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, json.loads(r.read() or b"null")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def main() -> int:
    cairn_port = int(os.environ.get("PLAY_CAIRN_PORT", "7420"))
    mc_port = int(os.environ.get("PLAY_MC_PORT", "25565"))
    host = os.environ.get("PLAY_HOST", "127.0.0.1")
    radius = int(os.environ.get("PLAY_RADIUS", "160"))
    data = ROOT / ".play"
    data.mkdir(exist_ok=True)
    keys_file = data / "keys.json"
    if keys_file.exists():
        keys = json.loads(keys_file.read_text())
    else:
        keys = {"admin": "admin-" + secrets.token_urlsafe(18), "game": "game-" + secrets.token_urlsafe(18)}
        keys_file.write_text(json.dumps(keys))
        keys_file.chmod(0o600)
    env = {**os.environ, "CAIRN_ADMIN_KEY": keys["admin"], "CAIRN_GAME_KEY": keys["game"]}
    base = f"http://127.0.0.1:{cairn_port}"
    procs: list[subprocess.Popen[bytes]] = []
    # No config file: the Minecraft server uploads the sites it generates into Cairn's `overworld`.
    config: list[str] = []

    def stop(*_: Any) -> None:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in reversed(procs):
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        print(f"starting Cairn on {base} (data in {data}/cairn)", flush=True)
        with open(data / "cairn.log", "ab") as log:
            procs.append(subprocess.Popen(
                [sys.executable, "-m", "cairn", "serve", "--port", str(cairn_port), "--data-dir", str(data / "cairn"),
                 *config],
                env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            ))  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/readyz", timeout=1) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                pass
            if procs[0].poll() is not None or time.monotonic() > deadline:
                print((data / "cairn.log").read_text()[-2000:], file=sys.stderr)
                print("Cairn did not start; its log is above", file=sys.stderr)
                return 1
            time.sleep(0.1)

        print(
            f"starting the Minecraft server on {host}:{mc_port} (generating {radius} blocks around spawn)", flush=True
        )
        mc = subprocess.Popen(
            ["node", str(MC_DIR / "server.js"), "--port", str(mc_port), "--host", host, "--cairn-url", base,
             "--world", WORLD, "--pregen-radius", str(radius), "--state-dir", str(data / "minecraft")],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )  # fmt: skip
        procs.append(mc)
        assert mc.stdout is not None
        for raw in mc.stdout:
            line = raw.decode(errors="replace").rstrip()
            print(f"  minecraft | {line}", flush=True)
            if line.startswith("minecraft server ready"):
                break
        else:
            print("the Minecraft server stopped; its output is above", file=sys.stderr)
            return 1

        hunt_id = "play-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime())
        spec = {
            "id": hunt_id, "name": "Cairn Play", "world": WORLD, "treasures": 12, "duration": "2h",
            "area": {"min": [-radius + 16, -64, -radius + 16], "max": [radius - 16, 320, radius - 16]},
            "spawn": {"tags_any": ["surface", "underwater"], "min_spacing": 24},
            "hints": {"cooldown": "15s", "solve_by": "30m"},
        }  # fmt: skip
        status, body = request(base + "/v1/hunts", keys["admin"], "POST", spec)
        if status != 201:
            print(f"creating the hunt failed: {status} {body}", file=sys.stderr)
            return 1
        shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
        print(
            f"""
  Cairn treasure hunt "{spec["name"]}" is running: {spec["treasures"]} treasures for 2 hours.

  Join with Minecraft Java Edition {VERSION}:
    Multiplayer -> Direct Connection -> {shown}:{mc_port}
  The server runs in offline mode: no Mojang/Microsoft account check, any player name works.
  In the game: /hunt lists hunts, /hint gives a clue (chat, and hot/cold on the action bar);
  break blocks where you think a treasure lies. Finds are announced to everyone.

  Dashboard: {base}/dashboard   (sign in with the admin key: {keys["admin"]})
  Logs: {data}/cairn.log   Press Ctrl-C to stop both servers.
""",
            flush=True,
        )
        for raw in mc.stdout:  # keep showing the game server's output until it stops
            print(f"  minecraft | {raw.decode(errors='replace').rstrip()}", flush=True)
        return mc.wait()
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
