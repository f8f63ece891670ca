"""Run the same tests two ways at the same time and print the CPU each way used.

    python -m bench.side_by_side tests/browser/test_payment_element.py \\
        --b "STOREFRONT_TEST_CHROMIUM_ARGS=--in-process-gpu"
    python -m bench.side_by_side tests --ignore=tests/browser --b TMPDIR=/dev/shm/x
    python -m bench.side_by_side tests/test_cart.py --a X=1 --b X=2 --repeat 2

Each side is one pytest process (no xdist) with its own environment variables (``--a``,
``--b``: NAME=VALUE, repeatable). This host's speed moves from run to run by more than
most changes to the suite save (the same code used 441 CPU-s in one ``make test`` and 527
in another), so timing A and then B cannot tell a 3% change from the host; run together,
both see the same host. A side's CPU is that of every process whose parent chain leads to
its pytest (Chromium's zygote and renderers, PostgreSQL's server through its environment),
read from /proc every 0.2 s: a process's last 0.2 s before it exits can be missed, alike on
both sides. ``--repeat`` swaps the sides between rounds. Linux only.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TICK = os.sysconf("SC_CLK_TCK")
MARK = "STOREFRONT_SIDE_BY_SIDE"


def _processes() -> dict[str, tuple[str, str, float]]:
    """pid -> (parent pid, start time, CPU seconds so far) for every process."""
    found = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        found[pid] = (fields[1], fields[19], (int(fields[11]) + int(fields[12])) / TICK)
    return found


def _side_of(pid: str, processes: dict, known: dict) -> str | None:
    """ "A", "B" or None: the mark in the environment of the process or an ancestor.

    ``known`` is kept for the whole run, keyed by (pid, start time): each process's
    environment is read once, not at every sample."""
    chain = []
    while pid in processes and pid not in ("0", "1"):
        key = (pid, processes[pid][1])
        if key in known:
            side = known[key]
            break
        chain.append(key)
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read()
        except OSError:
            environ = b""
        at = environ.find(MARK.encode() + b"=")
        if at >= 0:
            side = environ[at + len(MARK) + 1 : at + len(MARK) + 2].decode()
            break
        pid = processes[pid][0]
    else:
        side = None
    for key in chain:
        known[key] = side
    return side


def run_pair(pytest_args: list[str], env_a: dict, env_b: dict) -> dict[str, dict]:
    """Start both sides, sample /proc until both end; per side: CPU, wall, pytest's last line."""
    started = time.monotonic()
    sides = {}
    for side, extra in (("A", env_a), ("B", env_b)):
        env = {**os.environ, **extra, MARK: side}
        sides[side] = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "no:xdist", "-q", *pytest_args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
    cpu: dict[tuple[str, str], tuple[str, float]] = {}
    ended: dict[str, float] = {}
    known: dict[tuple[str, str], str | None] = {}
    while len(ended) < 2:
        processes = _processes()
        for pid, (_parent, start, seconds) in processes.items():
            side = _side_of(pid, processes, known)
            if side:
                cpu[(pid, start)] = (side, seconds)
        for side, proc in sides.items():
            if side not in ended and proc.poll() is not None:
                ended[side] = time.monotonic() - started
        time.sleep(0.2)
    result = {}
    for side, proc in sides.items():
        lines = proc.stdout.read().strip().splitlines()
        result[side] = {
            "cpu": sum(s for who, s in cpu.values() if who == side),
            "wall": ended[side],
            "pytest": lines[-1] if lines else "",
            "returncode": proc.returncode,
        }
    return result


def _env(pairs: list[str]) -> dict:
    env = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise SystemExit(f"--a/--b take NAME=VALUE, not {pair!r}")
        env[name] = value
    return env


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--a", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--b", action="append", default=[], metavar="NAME=VALUE")
    parser.add_argument("--repeat", type=int, default=1, help="rounds, sides swapped each")
    args, pytest_args = parser.parse_known_args()
    envs = {"A": _env(args.a), "B": _env(args.b)}
    failed = False
    for round_ in range(args.repeat):
        first, second = ("A", "B") if round_ % 2 == 0 else ("B", "A")
        result = run_pair(pytest_args, envs[first], envs[second])
        for shown, side in ((first, "A"), (second, "B")):
            r = result[side]
            failed |= r["returncode"] != 0
            print(
                f"{shown} {' '.join(args.a if shown == 'A' else args.b) or '(as is)'}: "
                f"{r['cpu']:.1f} CPU-s, {r['wall']:.0f} s  [{r['pytest']}]"
            )
        a, b = (result["A"], result["B"]) if first == "A" else (result["B"], result["A"])
        print(f"B/A: {b['cpu'] / a['cpu']:.3f}\n" if a["cpu"] else "")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
