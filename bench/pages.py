"""Page benchmark: seed a city-scale data set into a fresh database, serve the app with 2 uvicorn workers
and measure requests/s and p50/p99 latency at 32 connections on loopback, against a bare Starlette+Jinja2
page (bench/ceiling_app.py) measured in the same run as the ceiling.

    .venv/bin/python -m bench.pages                       # SQLite in a temporary directory
    .venv/bin/python -m bench.pages --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_x

The PostgreSQL database must exist and be empty (create it before, drop it after). Targets: every page
≥ 50% of the ceiling's requests/s and p99 < 100 ms. The load generator is ``wrk`` when installed
(``apt-get install wrk``), else an asyncio loop with httpx. Only 127.0.0.1 is ever a target; every run is
bounded in time; the servers started here are stopped at the end. A page that answers 404 (not built yet)
is skipped and reported as such. See bench/README.md for figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

import httpx
from sqlalchemy import create_engine, select

from bench import seed as seeder
from proposals.models import Proposal, Theme
from proposals.visibility import public_proposal

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
TARGET_SHARE = 0.5
TARGET_P99_MS = 100.0
MAX_DURATION = 60
MAX_REQUESTS = 2_000_000  # the httpx loop stops here at the latest


@dataclass
class Result:
    name: str
    path: str
    rps: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    requests: int = 0
    errors: int = 0
    cpu_ms: float = 0.0  # server CPU time per request (all its processes), robust on a busy machine
    cache: str = "-"  # the page cache's answer to the first request (miss/bypass; "-": not cacheable)
    note: str = ""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def stat_fields(pid: int) -> list[str]:
    """The fields of ``/proc/<pid>/stat`` after the command name: state, parent pid, … (``proc(5)``, from
    field 3 on). OSError when the process is gone."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def process_stats() -> dict[int, list[str]]:
    """``stat_fields`` of every process on the machine that could be read."""
    stats: dict[int, list[str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stats[int(entry.name)] = stat_fields(int(entry.name))
        except OSError:
            continue
    return stats


def tree_cpu_seconds(root: int, *, reaped: bool = False) -> float:
    """User + system CPU time so far of process ``root`` and all its living descendants (from ``/proc``).
    ``reaped``: add the time of the children ``root`` has already waited for (a PostgreSQL server's
    finished backends, whose time the kernel adds to their parent's)."""
    tick = os.sysconf("SC_CLK_TCK")
    stats = process_stats()
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    total, todo = 0.0, [root]
    if reaped and root in stats:
        total += (int(stats[root][13]) + int(stats[root][14])) / tick  # cutime, cstime
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += (int(stats[pid][11]) + int(stats[pid][12])) / tick  # utime, stime
        todo += children.get(pid, [])
    return total


class Server:
    """A server process in its own process group, logging to a file; stopped by its own pid."""

    def __init__(self, name: str, argv: list[str], port: int, env: dict[str, str], log_dir: Path):
        self.name, self.port = name, port
        self.log = log_dir / f"{name}.log"
        self._log_file = self.log.open("wb")
        self.proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log_file, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def base(self) -> str:
        return f"http://{HOST}:{self.port}"

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f} s:\n{self.tail()}")

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server and all its worker processes so far."""
        return tree_cpu_seconds(self.proc.pid)

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)  # the group this script created for the server
                self.proc.wait(timeout=15)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(timeout=5)
        self._log_file.close()


# --- load generators --------------------------------------------------------------------------------------

_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(value: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", value.strip())
    if not match:
        raise ValueError(f"cannot read wrk latency {value!r}")
    return float(match[1]) * _UNITS[match[2]]


def run_wrk(url: str, connections: int, duration: int, threads: int) -> Result:
    out = subprocess.run(
        ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency", "--timeout", "5s", url],
        capture_output=True,
        text=True,
        timeout=duration + 30,
        check=True,
    ).stdout
    result = Result("", url)
    result.rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out)[1])
    result.p50_ms = _ms(re.search(r"^\s+50%\s+(\S+)", out, re.M)[1])
    result.p99_ms = _ms(re.search(r"^\s+99%\s+(\S+)", out, re.M)[1])
    result.requests = int(re.search(r"(\d+) requests in", out)[1])
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    socket_errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result.errors = (int(non2xx[1]) if non2xx else 0) + (
        sum(map(int, socket_errors.groups())) if socket_errors else 0
    )
    return result


async def _httpx_load(url: str, connections: int, duration: int) -> Result:
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + duration
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(limits=limits, timeout=5.0) as client:

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < deadline and len(latencies) < MAX_REQUESTS:
                t0 = time.perf_counter()
                try:
                    response = await client.get(url)
                    if response.status_code >= 400:
                        errors += 1
                except httpx.HTTPError:
                    errors += 1
                latencies.append((time.perf_counter() - t0) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    result = Result("", url, requests=len(latencies), errors=errors)
    if latencies:
        result.rps = len(latencies) / elapsed
        result.p50_ms = latencies[len(latencies) // 2]
        result.p99_ms = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return result


def measure(url: str, *, server: Server, tool: str, connections: int, duration: int, threads: int) -> Result:
    if not url.startswith(f"http://{HOST}:{server.port}/"):
        raise ValueError("only 127.0.0.1 is measured")
    cpu0 = server.cpu_seconds()
    if tool == "wrk":
        result = run_wrk(url, connections, duration, threads)
    else:
        result = asyncio.run(_httpx_load(url, connections, duration))
    if result.requests:
        result.cpu_ms = (server.cpu_seconds() - cpu0) * 1000 / result.requests
    return result


# --- the run ------------------------------------------------------------------------------------------------


def targets(database_url: str, search_words: list[str]) -> list[tuple[str, str]]:
    """(name, path) of each page to measure, chosen from the seeded data."""
    engine = create_engine(database_url)
    try:
        with engine.connect() as conn:
            theme = conn.execute(select(Theme.slug).order_by(Theme.position).limit(1)).scalar_one()
            busy = conn.execute(
                select(Proposal.id, Proposal.comment_count)
                .where(public_proposal(), Proposal.comment_count >= 100)
                .order_by(Proposal.comment_count, Proposal.id)
                .limit(1)
            ).first()
    finally:
        engine.dispose()
    pages = [("home", "/"), ("list by theme", f"/proposals?theme={theme}")]
    pages += [(f"search '{w}'", f"/proposals?q={quote(w)}") for w in search_words]
    if busy is not None:
        pages.append((f"proposal, {busy.comment_count} comments", f"/proposals/{busy.id}"))
    pages.append(("api proposals", "/api/v1/proposals"))
    if busy is not None:
        pages.append(("api comments", f"/api/v1/proposals/{busy.id}/comments?limit=100"))
    return pages


def _cell(ok: bool, text: str) -> str:
    return text if ok else f"{text} ✗"


def report(ceiling: Result, results: list[Result]) -> str:
    lines = [
        f"{'page':<32} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'% ceiling':>10} {'cpu ms/req':>10}  errors"
        "  cache",
        "-" * 99,
        f"{'ceiling (Starlette+Jinja2)':<32} {ceiling.rps:>8.0f} {ceiling.p50_ms:>8.1f} {ceiling.p99_ms:>8.1f}"
        f" {'100%':>10} {ceiling.cpu_ms:>10.2f}  {ceiling.errors}",
    ]
    for r in results:
        if r.note:
            lines.append(f"{r.name:<32} {'skipped: ' + r.note}")
            continue
        share = r.rps / ceiling.rps if ceiling.rps else 0.0
        lines.append(
            f"{r.name:<32} {r.rps:>8.0f} {r.p50_ms:>8.1f} {_cell(r.p99_ms < TARGET_P99_MS, f'{r.p99_ms:.1f}'):>8}"
            f" {_cell(share >= TARGET_SHARE, f'{share:.0%}'):>10} {r.cpu_ms:>10.2f}  {r.errors:>6}  {r.cache}"
        )
    lines.append(
        f"targets: ≥ {TARGET_SHARE:.0%} of the ceiling's req/s and p99 < {TARGET_P99_MS:.0f} ms (✗ = missed)"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="page benchmark against a bare Starlette+Jinja2 ceiling")
    parser.add_argument(
        "--database-url", default="", help="a fresh, empty database (default: SQLite in a temp dir)"
    )
    parser.add_argument("--duration", type=int, default=10, help="seconds per page (default 10)")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections (default 32)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per server (default 2)")
    parser.add_argument("--scale", type=float, default=1.0, help="data set size factor (default 1.0)")
    parser.add_argument("--tool", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--search", action="append", help="search word(s); default Spielplatz and Radweg")
    parser.add_argument("--only", action="append", help="measure only pages whose name contains this text")
    parser.add_argument("--no-seed", action="store_true", help="use an already seeded database as it is")
    parser.add_argument("--keep", action="store_true", help="keep the temporary SQLite database")
    parser.add_argument(
        "--page-cache-seconds",
        type=int,
        default=None,
        help="PAGE_CACHE_SECONDS for the app (default: the app's default, 3; 0 measures every page uncached)",
    )
    args = parser.parse_args(argv)
    if not 1 <= args.duration <= MAX_DURATION:
        parser.error(f"--duration must be 1..{MAX_DURATION}")
    if not 1 <= args.connections <= 256 or not 1 <= args.threads <= 16 or not 1 <= args.workers <= 16:
        parser.error("--connections 1..256, --threads 1..16, --workers 1..16")
    if args.page_cache_seconds is not None and not 0 <= args.page_cache_seconds <= 60:
        parser.error("--page-cache-seconds must be 0..60")
    if args.no_seed and not args.database_url:
        parser.error("--no-seed needs --database-url")
    tool = args.tool if args.tool != "auto" else ("wrk" if shutil.which("wrk") else "httpx")
    search_words = args.search or ["Spielplatz", seeder.SEARCH_WORD]

    workdir = Path(tempfile.mkdtemp(prefix="mitmachen-bench-"))
    url = args.database_url or f"sqlite:///{workdir / 'bench.sqlite3'}"
    backend = url.split(":", 1)[0].split("+", 1)[0]
    servers: list[Server] = []
    try:
        if not args.no_seed:
            print(f"seeding a city-scale data set into {backend} …")
            rep = seeder.seed(url, factor=args.scale)
            print(f"seeded in {rep.seconds['total']:.1f} s")
        env = {
            **os.environ,
            "ENVIRONMENT": "development",
            "DATABASE_URL": url,
            "DATA_DIR": str(workdir),
            "PYTHONUNBUFFERED": "1",
        }
        if args.page_cache_seconds is not None:
            env["PAGE_CACHE_SECONDS"] = str(args.page_cache_seconds)
        cache = env.get("PAGE_CACHE_SECONDS", "default (3)")
        app_port, ceiling_port = free_port(), free_port()
        env["BASE_URL"] = f"http://{HOST}:{app_port}"
        mitmachen = str(Path(sys.executable).with_name("mitmachen"))
        app_argv = [
            mitmachen,
            "serve",
            "--host",
            HOST,
            "--port",
            str(app_port),
            "--workers",
            str(args.workers),
        ]
        ceiling_argv = [sys.executable, "-m", "bench.ceiling_app", "--port", str(ceiling_port)]
        ceiling_argv += ["--workers", str(args.workers)]
        servers.append(Server("app", app_argv, app_port, env, workdir))
        servers.append(Server("ceiling", ceiling_argv, ceiling_port, env, workdir))
        for server in servers:
            server.wait_ready()
        app, ceiling_server = servers

        print(
            f"load: {tool}, {args.connections} connections, {args.duration} s per page, {args.workers} workers,"
            f" PAGE_CACHE_SECONDS {cache} (load average before: {os.getloadavg()[0]:.1f})"
        )
        warm = max(1, min(3, args.duration // 3))
        load = dict(tool=tool, connections=args.connections, threads=args.threads)
        measure(f"{ceiling_server.base}/", server=ceiling_server, duration=warm, **load)
        ceiling = measure(f"{ceiling_server.base}/", server=ceiling_server, duration=args.duration, **load)
        ceiling.name = "ceiling"
        print(f"  {'ceiling':<30} {ceiling.rps:8.0f} req/s  p99 {ceiling.p99_ms:6.1f} ms")
        results: list[Result] = []
        for name, path in targets(url, search_words):
            if args.only and not any(word in name for word in args.only):
                continue
            target = f"{app.base}{path}"
            probe = httpx.get(target, timeout=30)
            status = probe.status_code
            if status != 200:
                note = "404, page not built yet" if status == 404 else f"answers {status}"
                results.append(Result(name, path, note=note))
                print(f"  {name}: {note}")
                continue
            measure(target, server=app, duration=warm, **load)
            result = measure(target, server=app, duration=args.duration, **load)
            result.name, result.path = name, path
            result.cache = probe.headers.get("x-page-cache", "-")
            results.append(result)
            print(
                f"  {name:<30} {result.rps:8.0f} req/s  p99 {result.p99_ms:6.1f} ms  cpu {result.cpu_ms:.2f} ms/req"
            )
        print()
        load_avg = ", ".join(f"{x:.1f}" for x in os.getloadavg())
        print(
            f"backend: {backend}; cpus: {os.cpu_count()}; load average now: {load_avg}; page cache: {cache}"
        )
        print("pages: " + ", ".join(r.path for r in results))
        print(report(ceiling, results))
        missed = [
            r
            for r in results
            if not r.note and (r.p99_ms >= TARGET_P99_MS or r.rps < TARGET_SHARE * ceiling.rps)
        ]
        return 1 if missed else 0
    finally:
        for server in reversed(servers):
            server.stop()
        if args.keep and not args.database_url:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
