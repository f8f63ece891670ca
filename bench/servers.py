"""Processes for the benchmarks: the Stripe emulator, the shop and the bare baselines under
gunicorn, and a throwaway PostgreSQL server. Everything listens on loopback only."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
EMULATOR_KEYS = {
    "STRIPE_SECRET_KEY": "sk_test_emulator",
    "STRIPE_PUBLISHABLE_KEY": "pk_test_emulator",
}
# The same settings for the shop and both baselines, so the ratios compare code, not servers.
GUNICORN_WORKERS = 2


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(url: str, proc: subprocess.Popen, timeout: float = 120.0) -> None:
    """Poll ``url`` until it answers (any HTTP status); fail if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode} at start-up")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not come up within {timeout:.0f}s")


class Process:
    """A child process in its own process group, logging to a file; ``stop`` ends it."""

    def __init__(self, name: str, cmd: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            cmd,
            env=env,
            cwd=ROOT,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            # gunicorn's master stops its workers on SIGTERM; the group catches stragglers.
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self._log.close()


def base_env(**extra: str) -> dict[str, str]:
    """The caller's PATH and locale, none of its shop settings (no .env either: cwd=ROOT
    has none in CI; a developer's .env is overridden by every setting we pass)."""
    keep = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR")
    env = {k: os.environ[k] for k in keep if k in os.environ}
    env["PYTHONPATH"] = str(ROOT)
    env.update(extra)
    return env


def gunicorn(
    name: str,
    app: str,
    env: dict[str, str],
    log_dir: Path,
    *,
    workers: int = GUNICORN_WORKERS,
    health: str = "/",
    port: int | None = None,
) -> tuple[Process, str]:
    """``gunicorn -w N APP`` on a (free) loopback port; returns the process and its URL."""
    port = port or free_port()
    cmd = [
        str(BIN / "gunicorn"),
        "-w",
        str(workers),
        "-b",
        f"127.0.0.1:{port}",
        "--log-level",
        "warning",
        app,
    ]
    proc = Process(name, cmd, env, log_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + health, proc.proc)
    except RuntimeError:
        proc.stop()
        raise
    return proc, url


def emulator(log_dir: Path) -> tuple[Process, str]:
    """``python -m stripe_emulator`` on a free port with its own database."""
    port = free_port()
    cmd = [
        sys.executable,
        "-m",
        "stripe_emulator",
        "--port",
        str(port),
        "--db",
        str(log_dir / f"stripe-emulator-{port}.sqlite3"),
        "--quiet",
    ]
    proc = Process(f"emulator-{port}", cmd, base_env(), log_dir)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(url + "/healthz", proc.proc)
    except RuntimeError:
        proc.stop()
        raise
    return proc, url


@contextlib.contextmanager
def postgres() -> Iterator[str | None]:
    """A throwaway PostgreSQL server (see tests/postgres.py); None when none is installed."""
    from tests.postgres import throwaway_server

    with contextlib.ExitStack() as stack:
        try:
            url = stack.enter_context(throwaway_server())
        except FileNotFoundError:
            url = None
        yield url
