"""CPU time per ballot cast and per receipt, in-process: the app is driven directly as an ASGI application
(no HTTP server, no network, one request at a time), so the figures are the app's own work and barely
depend on what else runs on the machine — the number to compare two versions of the code by, beside the
load run of bench/load_ballots.py.

    .venv/bin/python -m bench.cast_cpu                         # SQLite in a temporary directory
    .venv/bin/python -m bench.cast_cpu --ballots 5000
    .venv/bin/python -m bench.cast_cpu --db postgresql          # a temporary PostgreSQL database
    .venv/bin/python -m bench.cast_cpu --profile cast.prof      # cProfile of the measured requests

It seeds N residents and an open approval vote exactly as bench/load_ballots.py does (every resident with
a signed session cookie), builds the app with ``create_app()`` (ENVIRONMENT=development, rate limits on),
warms up with 100 residents, then for every other resident POSTs the ballot (303 expected) and GETs the
receipt JSON (200 expected), and prints the mean CPU time (``time.process_time``: all threads of this
process) of each. ``--profile`` runs the units of work on the event loop's thread so that cProfile sees
them (their threads are invisible to it).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench import load_ballots

WARM_UP = 100
MAX_BALLOTS = 100_000


def _scope(method: str, path: str, cookie: str, body: bytes) -> dict[str, Any]:
    path_only, _, query = path.partition("?")
    headers = [(b"host", b"127.0.0.1:8000"), (b"cookie", f"session={cookie}".encode()), (b"accept", b"*/*")]
    if body:
        headers += [
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ]
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path_only,
        "raw_path": path_only.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }


async def call(app: Any, method: str, path: str, cookie: str, form: dict[str, str] | None = None) -> int:
    """One request straight into the ASGI app; returns the status."""
    body = urlencode(form).encode() if form else b""
    delivered = False

    async def receive() -> dict[str, Any]:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        await asyncio.sleep(3600)  # the client never disconnects during a request
        return {"type": "http.disconnect"}

    status = 0

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(_scope(method, path, cookie, body), receive, send)
    return status


async def measure(app: Any, seeded: load_ballots.Seeded, profile: Any = None) -> tuple[int, float, float]:
    """(ballots measured, mean CPU ms per cast, mean CPU ms per receipt)."""
    cast = f"/processes/{seeded.process_id}/ballot/cast"
    receipt = f"/processes/{seeded.process_id}/receipt.json?scope=0"

    def form(voter: load_ballots.Voter) -> dict[str, str]:
        return {"csrf_token": voter.csrf, "scope": "0", "selection": voter.selection}

    for voter in seeded.voters[:WARM_UP]:
        if await call(app, "POST", cast, voter.cookie, form(voter)) != 303:
            raise SystemExit("the warm-up cast was not acknowledged")
        await call(app, "GET", receipt, voter.cookie)
    cast_cpu = receipt_cpu = 0.0
    measured = seeded.voters[WARM_UP:]
    for voter in measured:
        if profile is not None:
            profile.enable()
        t0 = time.process_time()
        cast_status = await call(app, "POST", cast, voter.cookie, form(voter))
        t1 = time.process_time()
        receipt_status = await call(app, "GET", receipt, voter.cookie)
        t2 = time.process_time()
        if profile is not None:
            profile.disable()
        if cast_status != 303 or receipt_status != 200:
            raise SystemExit(f"resident {voter.user_id}: cast {cast_status}, receipt {receipt_status}")
        cast_cpu += t1 - t0
        receipt_cpu += t2 - t1
    n = len(measured)
    return n, 1000 * cast_cpu / n, 1000 * receipt_cpu / n


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ballots", type=int, default=3000, help="residents (default 3000)")
    parser.add_argument("--profile", metavar="FILE", help="write a cProfile of the measured requests")
    load_ballots.add_database_arguments(parser)
    args = parser.parse_args(argv)
    if not WARM_UP < args.ballots <= MAX_BALLOTS:
        print(f"--ballots must be {WARM_UP + 1} to {MAX_BALLOTS}", file=sys.stderr)
        return 2
    tmp = Path(tempfile.mkdtemp(prefix="mitmachen-cast-cpu-"))
    try:
        return _run(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args: argparse.Namespace, tmp: Path) -> int:
    if args.db == "sqlite":
        return _measure(args, tmp, f"sqlite:///{tmp / 'cast.sqlite3'}")
    name = f"mitmachen_cast_cpu_{os.getpid()}"
    url = load_ballots.create_pg_database(args.database_url, name)
    try:
        return _measure(args, tmp, url)
    finally:
        load_ballots.drop_pg_database(args.database_url, name)


def _measure(args: argparse.Namespace, tmp: Path, url: str) -> int:
    seeded = load_ballots.seed(url, args.ballots)
    os.environ.update(load_ballots.server_env(url, tmp), LOG_LEVEL="WARNING")

    from app.main import create_app
    from app.settings import Settings

    profile = None
    if args.profile:
        import cProfile

        os.environ["WEB_THREADS"] = "1"  # units of work on this thread, where cProfile sees them
        profile = cProfile.Profile(time.process_time)  # CPU, not waits on the database
    app = create_app(Settings.from_env())
    try:
        n, cast_ms, receipt_ms = asyncio.run(measure(app, seeded, profile))
    finally:
        app.state.engine.dispose()
    print(
        f"{n} ballots (after {WARM_UP} to warm up): cast {cast_ms:.2f} ms CPU, receipt {receipt_ms:.2f} ms CPU"
    )
    if profile is not None:
        profile.dump_stats(args.profile)
        print(f"profile written to {args.profile}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
