"""The Minecraft integration under test: the flying-squid launcher and mineflayer bots, as real processes."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

from tests.support import free_port

ROOT = Path(__file__).resolve().parents[2]
MC_DIR = ROOT / "integrations" / "minecraft"


def node_ready() -> str | None:
    """Why the Minecraft tests cannot run here, or None."""
    if shutil.which("node") is None:
        return "node is not installed (.ci/run installs it)"
    if not (MC_DIR / "node_modules" / "flying-squid").is_dir() or not (MC_DIR / "node_modules" / "mineflayer").is_dir():
        return f"run `npm ci` in {MC_DIR}"
    return None


class MinecraftServer:
    """`node integrations/minecraft/server.js`, started until it prints its ready line."""

    def __init__(self, cairn_url: str, log: Path, *, world: str = "overworld", radius: int = 48,
                 extra: tuple[str, ...] = (), env: dict[str, str] | None = None) -> None:  # fmt: skip
        self.port = free_port()
        self.cairn_url = cairn_url
        self.log = log
        self.args = ["node", str(MC_DIR / "server.js"), "--port", str(self.port), "--cairn-url", cairn_url,
                     "--world", world, "--pregen-radius", str(radius), *extra]  # fmt: skip
        self.env = {**os.environ, **(env or {})}
        self.proc: subprocess.Popen[str] | None = None
        self.lines: list[str] = []
        self._cond = threading.Condition()

    def start(self, timeout: float = 120.0) -> None:
        self.proc = subprocess.Popen(
            self.args, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_line(lambda s: s.startswith("minecraft server ready on port"), timeout)

    def _read(self) -> None:
        assert self.proc is not None and self.proc.stdout is not None
        with open(self.log, "a") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                with self._cond:
                    self.lines.append(line.rstrip("\n"))
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def wait_line(self, pred: Any, timeout: float = 30.0, start: int = 0) -> str:
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for line in self.lines[start:]:
                    if pred(line):
                        return line
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError("server.js exited:\n" + "\n".join(self.lines[-40:]))
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("server.js did not print the line:\n" + "\n".join(self.lines[-40:]))
                self._cond.wait(left)

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        code = self.proc.returncode
        self.proc = None
        return code


class Bots:
    """`node integrations/minecraft/bots.js`: mineflayer bots over the real protocol, one JSON line per command."""

    def __init__(self, port: int, log: Path) -> None:
        with open(log, "a") as err:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                ["node", str(MC_DIR / "bots.js"), "--host", "127.0.0.1", "--port", str(port)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True, bufsize=1,
            )  # fmt: skip
        self.replies: dict[int, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        self._next = 0
        self._log = log
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        with open(self._log, "a") as log:
            for line in self.proc.stdout:
                log.write(line)
                log.flush()
                try:
                    msg = json.loads(line)
                except json.JSONDecodeError:
                    continue
                with self._cond:
                    if "id" in msg:
                        self.replies[msg["id"]] = msg
                    else:
                        self.events.append(msg)
                    self._cond.notify_all()
        with self._cond:
            self._cond.notify_all()

    def send(self, op: str, timeout: float = 60.0, **kw: Any) -> int:
        assert self.proc.stdin is not None
        with self._cond:  # one whole line at a time, from any thread
            self._next += 1
            n = self._next
            self.proc.stdin.write(json.dumps({"id": n, "op": op, **kw}) + "\n")
            self.proc.stdin.flush()
        return n

    def reply(self, n: int, timeout: float = 60.0) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while n not in self.replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise TimeoutError(f"no reply to command {n}")
                self._cond.wait(left)
            msg = self.replies.pop(n)
        if not msg.get("ok"):
            raise RuntimeError(f"bot command {n} failed: {msg.get('error')}")
        return msg

    def do(self, op: str, timeout: float = 60.0, **kw: Any) -> dict[str, Any]:
        return self.reply(self.send(op, **kw), timeout)

    def mark(self) -> int:
        with self._cond:
            return len(self.events)

    def seen(self, name: str, since: int = 0, kind: str | None = None) -> list[str]:
        """The chat (and action bar) texts that player `name` was shown since event index `since`."""
        with self._cond:
            return [e["text"] for e in self.events[since:]
                    if e.get("name") == name and (kind is None or e["event"] == kind)
                    and e["event"] in ("chat", "actionbar")]  # fmt: skip

    def wait_text(self, name: str, pattern: str, since: int = 0, timeout: float = 30.0, kind: str | None = None) -> str:
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for e in self.events[since:]:
                    shown = e.get("name") == name and e["event"] in ("chat", "actionbar")
                    if shown and (kind is None or e["event"] == kind) and rx.search(e["text"]):
                        return str(e["text"])
                left = deadline - time.monotonic()
                if left <= 0:
                    texts = [e.get("text") for e in self.events[since:] if e.get("name") == name]
                    raise TimeoutError(f"{name} was not shown /{pattern}/; saw: {texts[-30:]}")
                self._cond.wait(left)

    def close(self) -> None:
        if self.proc.poll() is None:
            assert self.proc.stdin is not None
            try:
                self.proc.stdin.close()
                self.proc.wait(10)
            except (subprocess.TimeoutExpired, BrokenPipeError):
                self.proc.kill()
                self.proc.wait(5)
