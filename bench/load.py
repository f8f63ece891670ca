"""Load generators: wrk (Debian's package; ``make bench`` installs it) or, without it, a
Python one. Both keep N connections busy for a fixed time on loopback and report
requests/s, p50, p99 and errors (socket errors, timeouts and 4xx/5xx answers)."""

from __future__ import annotations

import http.client
import json
import shutil
import statistics
import subprocess
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

# wrk runs this in each of its threads: requests from a file of signed bodies (one per
# line, "signature<TAB>body", each thread taking every n-th line), and one JSON line at
# the end with what we report.
WRK_SCRIPT = r"""
local counter = 1
function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
end

function init(args)
  n = 0
  if args[1] ~= nil then
    local nthreads = tonumber(args[2])
    sigs, bodies = {}, {}
    local i = 0
    for line in io.lines(args[1]) do
      if i % nthreads == tid - 1 then
        local tab = line:find("\t", 1, true)
        n = n + 1
        sigs[n] = line:sub(1, tab - 1)
        bodies[n] = line:sub(tab + 1)
      end
      i = i + 1
    end
    k = 0
  end
end

function request()
  if n == 0 then
    return wrk.format(nil)
  end
  k = k % n + 1
  return wrk.format("POST", nil,
    {["Content-Type"] = "application/json", ["Stripe-Signature"] = sigs[k]}, bodies[k])
end

function done(summary, latency, requests)
  local e = summary.errors
  local q = {}
  for i, p in ipairs({QUANTILES}) do
    q[i] = string.format("[%s, %d]", p, latency:percentile(p))
  end
  io.write(string.format(
    'BENCH {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, '
    .. '"socket_errors": %d, "timeouts": %d, "bad_status": %d, "quantiles_us": [%s]}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write, e.timeout, e.status, table.concat(q, ", ")))
end
"""

# The latency percentiles each run reports besides p50 and p99, so runs can be combined
# into one distribution (``combined_percentile``).
QUANTILES = (0.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 98.0, 99.0, 99.5, 99.9, 100.0)
WRK_SCRIPT = WRK_SCRIPT.replace("{QUANTILES}", "{" + ", ".join(f"{q}" for q in QUANTILES) + "}")


@dataclass
class Result:
    name: str
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    loadgen: str
    # (percentile, ms) pairs at ``QUANTILES``: the run's latency distribution.
    quantiles: list[tuple[float, float]] = field(default_factory=list)

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def as_dict(self) -> dict:
        return {**asdict(self), "rps": round(self.rps, 1)}


def wrk_path() -> str | None:
    return shutil.which("wrk")


def write_bodies(path: Path, signed: list[tuple[str, str]]) -> Path:
    with path.open("w", encoding="utf-8") as fh:
        for signature, body in signed:
            assert "\n" not in body and "\t" not in body
            fh.write(f"{signature}\t{body}\n")
    return path


def run(
    name: str,
    url: str,
    *,
    seconds: float,
    connections: int,
    threads: int = 2,
    bodies: Path | None = None,
    loadgen: str = "auto",
) -> Result:
    """Drive ``url`` (GET, or POST of the signed ``bodies``) for ``seconds``."""
    if loadgen == "auto":
        loadgen = "wrk" if wrk_path() else "python"
    if loadgen == "wrk":
        return _wrk(name, url, seconds, connections, threads, bodies)
    return _python(name, url, seconds, connections, bodies)


def _wrk(name, url, seconds, connections, threads, bodies) -> Result:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT)
    cmd = [
        wrk_path() or "wrk",
        f"-t{threads}",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--timeout",
        "5s",
        "-s",
        script.name,
        url,
    ]
    if bodies is not None:
        cmd += ["--", str(bodies), str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 60)
    Path(script.name).unlink()
    line = next((x for x in out.stdout.splitlines() if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no result: {out.stdout}\n{out.stderr}")
    data = json.loads(line[len("BENCH ") :])
    return Result(
        name=name,
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=data["socket_errors"] + data["timeouts"] + data["bad_status"],
        loadgen="wrk",
        quantiles=[(p, us / 1000) for p, us in data["quantiles_us"]],
    )


def _python(name, url, seconds, connections, bodies) -> Result:
    """Threads with one keep-alive connection each: a fallback, slower than wrk, so the
    baselines (and the ratios) are understated with it; prefer wrk."""
    parts = urlsplit(url)
    signed = []
    if bodies is not None:
        for line in bodies.read_text(encoding="utf-8").splitlines():
            signature, body = line.split("\t", 1)
            signed.append((signature, body.encode()))
    latencies: list[list[float]] = [[] for _ in range(connections)]
    errors = [0] * connections
    deadline = time.monotonic() + seconds

    def worker(i: int) -> None:
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        mine = signed[i::connections] or [None]
        k = 0
        while time.monotonic() < deadline:
            item = mine[k % len(mine)]
            k += 1
            start = time.perf_counter()
            try:
                if item is None:
                    conn.request("GET", parts.path or "/")
                else:
                    headers = {"Content-Type": "application/json", "Stripe-Signature": item[0]}
                    conn.request("POST", parts.path, body=item[1], headers=headers)
                response = conn.getresponse()
                response.read()
                if response.status >= 400:
                    errors[i] += 1
                if response.will_close:
                    conn.close()
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                continue
            latencies[i].append((time.perf_counter() - start) * 1000)
        conn.close()

    started = time.monotonic()
    workers = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    elapsed = time.monotonic() - started
    everything = sorted(x for per in latencies for x in per)

    def at(percentile: float) -> float:
        if not everything:
            return 0.0
        return everything[min(len(everything) - 1, int(len(everything) * percentile / 100))]

    return Result(
        name=name,
        requests=len(everything) + sum(errors),
        seconds=elapsed,
        p50_ms=statistics.median(everything) if everything else 0.0,
        p99_ms=at(99),
        errors=sum(errors),
        loadgen="python",
        quantiles=[(q, at(q)) for q in QUANTILES] if everything else [],
    )


def combined_percentile(runs: list[Result], percentile: float) -> float:
    """The latency at ``percentile`` of all the runs' requests together, from each run's
    percentiles (``quantiles``): the mixture of their distributions, each weighted by its
    requests, read between known points linearly. A burst of slow requests in one short
    run then counts for its share of the requests, as it would in one long run."""
    runs = [r for r in runs if r.requests and r.quantiles]
    if not runs:
        return 0.0
    total = sum(r.requests for r in runs)

    def below(ms: float) -> float:  # the share of all requests at most ``ms``
        share = 0.0
        for r in runs:
            share += r.requests * _fraction_at_most(r.quantiles, ms)
        return share / total

    candidates = sorted({ms for r in runs for _, ms in r.quantiles})
    target = percentile / 100
    low, low_share = candidates[0], below(candidates[0])
    for ms in candidates:
        share = below(ms)
        if share >= target:
            # Between the last point below the target and this one, linearly.
            if share == low_share:
                return ms
            return low + (ms - low) * (target - low_share) / (share - low_share)
        low, low_share = ms, share
    return candidates[-1]


def _fraction_at_most(quantiles: list[tuple[float, float]], ms: float) -> float:
    """A run's share of requests at most ``ms``, from its (percentile, ms) points."""
    if ms < quantiles[0][1]:
        return 0.0
    for (p0, v0), (p1, v1) in zip(quantiles, quantiles[1:], strict=False):
        if ms < v1:
            return (p0 + (p1 - p0) * ((ms - v0) / (v1 - v0) if v1 > v0 else 1.0)) / 100
    return 1.0
