"""Faults under load (issue #9): a uvicorn worker and then the whole server are killed with SIGKILL in the
middle of a ballot load, and a database that refuses connections for a while. Real ``mitmachen serve``
processes on 127.0.0.1, real HTTP, SQLite (WAL) and PostgreSQL.

After a crash nothing acknowledged may be lost and nothing half-written may be visible: every resident
whose ballot was acknowledged (303 to the receipt) has exactly one stored ballot with the selection sent,
every stored ballot is its log entry and every log entry's ballot is stored, the log indices are
contiguous, and the audit bundle passes ``mitmachen verify``. Clients retry what was not acknowledged
(a ballot replaces the voter's previous one, so a repeat is harmless)."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import threading
import time

import httpx
import pytest

from bench import load_ballots as lb
from tests.ops.conftest import Load, assert_consistent, plan_for

VOTERS = 360


def test_kill_one_worker_mid_load(ops_db, serve):
    """kill -9 of one of two uvicorn workers while residents vote: the supervisor starts a new worker, the
    clients resend what had no answer, every ballot is stored exactly once and the log verifies."""
    seeded = lb.seed(ops_db.url, VOTERS)
    server = serve(workers=2)
    victim = server.worker_pids()[0]
    load = Load(plan_for(seeded, server.port), seeded.voters).start()
    load.wait_for(VOTERS // 3)
    os.kill(victim, signal.SIGKILL)
    outcomes = load.join()
    assert_consistent(ops_db, seeded, outcomes)
    assert len(load.outcomes) == VOTERS
    deadline = time.monotonic() + 20
    while len(server.worker_pids()) < 2 and time.monotonic() < deadline:  # the supervisor replaced it
        time.sleep(0.1)
    workers = server.worker_pids()
    assert victim not in workers and len(workers) == 2


def test_kill_whole_server_mid_load_then_restart(ops_db, serve):
    """kill -9 of the supervisor and both workers at once in the middle of the load (SQLite: the WAL is
    left as it was), then a restart on the same port: the clients' retries complete every ballot; what
    was acknowledged before the crash is still there, and no ballot lacks its log entry or vice versa."""
    seeded = lb.seed(ops_db.url, VOTERS)
    server = serve(workers=2)
    load = Load(plan_for(seeded, server.port), seeded.voters).start()
    load.wait_for(VOTERS // 3)
    server.kill_all()
    before = {o.user_id for o in list(load.outcomes) if o.acknowledged}
    problems = lb.check_store(seeded, [o for o in list(load.outcomes) if o.user_id in before])
    assert not problems, problems  # acknowledged before the crash: durable, and the store is consistent
    time.sleep(0.5)  # clients find the port closed and keep retrying
    server.start()
    outcomes = load.join()
    assert before <= {o.user_id for o in outcomes if o.acknowledged}
    assert_consistent(ops_db, seeded, outcomes)


# --- a database that refuses connections ------------------------------------------------------------------


class TCPProxy:
    """A TCP forwarder on 127.0.0.1 (in its own thread and event loop) between the app and PostgreSQL;
    ``stop()`` closes the listener and every open connection (the database "goes away"), ``start()`` opens
    it again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self.loop = asyncio.new_event_loop()
        self._server: asyncio.AbstractServer | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._thread = threading.Thread(target=self.loop.run_forever, name="pg-proxy", daemon=True)
        self._thread.start()

    def _call(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        except (ConnectionError, OSError):
            pass
        finally:
            writer.close()

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection(*self.target)
        except OSError:
            client_w.close()
            return
        self._writers |= {client_w, server_w}
        await asyncio.gather(self._pipe(client_r, server_w), self._pipe(server_r, client_w))
        self._writers -= {client_w, server_w}

    async def _start(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port, reuse_address=True)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.transport.abort()
        self._writers.clear()

    def start(self) -> TCPProxy:
        self._call(self._start())
        return self

    def stop(self) -> None:
        self._call(self._stop())

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=5)


def assert_unavailable(response: httpx.Response, *, api: bool) -> None:
    """503 with Retry-After and the generic page (or the JSON error), no traceback or driver detail."""
    assert response.status_code == 503, (response.status_code, response.text[:300])
    assert int(response.headers["retry-after"]) > 0
    body = response.text
    for leak in ("Traceback", "OperationalError", "psycopg", "sqlite3", "sqlalchemy", 'File "'):
        assert leak not in body, leak
    if api:
        assert response.json()["error"]["code"] == "unavailable"
    else:
        assert response.headers["content-type"].startswith("text/html")
        assert "<h1>" in body and "503" in body


def cast(server, voter: lb.Voter, process_id: int, timeout: float = 60.0) -> httpx.Response:
    return httpx.post(
        f"{server.base}/processes/{process_id}/ballot/cast",
        data={"csrf_token": voter.csrf, "scope": "0", "selection": voter.selection},
        cookies={"session": voter.cookie},
        timeout=timeout,
    )


def test_postgresql_refusing_connections_gives_503_then_recovers(ops_db, serve):
    """The app reaches PostgreSQL through a TCP proxy; the proxy goes away (open connections cut, new ones
    refused): pages answer 503 with the generic error page and Retry-After, the API a JSON error, nothing
    of the failure leaks; the proxy comes back and the same server answers normally again, by itself."""
    if ops_db.backend != "postgresql":
        pytest.skip("the proxy sits in front of PostgreSQL; SQLite has its own test")
    from sqlalchemy import make_url

    url = make_url(ops_db.url)
    proxy = TCPProxy(url.host or "127.0.0.1", url.port or 5432).start()
    try:
        seeded = lb.seed(ops_db.url, 4)
        proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        server = serve(workers=1, url=proxied)
        # signed in: the live pages (anonymous ones may come from the short page cache meanwhile)
        pages = [f"/processes/{seeded.process_id}", "/proposals", "/account"]
        api = f"/api/v1/processes/{seeded.process_id}/log/head"
        reader = {"session": seeded.voters[2].cookie}

        def get(path: str) -> httpx.Response:
            return httpx.get(server.base + path, cookies=reader, timeout=60)

        assert cast(server, seeded.voters[0], seeded.process_id).status_code == 303
        for path in pages + [api]:
            assert get(path).status_code == 200, path

        proxy.stop()
        for path in pages:
            assert_unavailable(get(path), api=False)
        assert_unavailable(get(api), api=True)
        assert_unavailable(cast(server, seeded.voters[1], seeded.process_id), api=False)

        proxy.start()
        for path in pages + [api]:
            assert get(path).status_code == 200, path
        assert cast(server, seeded.voters[1], seeded.process_id).status_code == 303
        assert "database unavailable" in server.log_text()  # the operator learns why
    finally:
        proxy.close()
    outcomes = [lb.Outcome(v.user_id, status=303) for v in seeded.voters[:2]]
    assert not lb.check_store(seeded, outcomes, allow_unacknowledged=False)


def test_sqlite_locked_past_busy_timeout_gives_503_then_recovers(ops_db, serve):
    """Another process holds SQLite's write lock longer than the 30 s busy timeout: a ballot is answered
    503 with Retry-After (no traceback), nothing of it is stored; once the lock is gone the same server
    takes the ballot."""
    if ops_db.backend != "sqlite":
        pytest.skip("SQLite only")
    seeded = lb.seed(ops_db.url, 3)
    server = serve(workers=1)
    assert cast(server, seeded.voters[0], seeded.process_id).status_code == 303
    blocker = sqlite3.connect(ops_db.url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        blocker.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        response = cast(server, seeded.voters[1], seeded.process_id, timeout=90)
        assert time.monotonic() - started >= 25  # it waited for the lock before giving up
        assert_unavailable(response, api=False)
        assert httpx.get(f"{server.base}/processes/{seeded.process_id}", timeout=30).status_code == 200
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert cast(server, seeded.voters[1], seeded.process_id).status_code == 303
    outcomes = [lb.Outcome(v.user_id, status=303) for v in seeded.voters[:2]]
    assert not lb.check_store(seeded, outcomes, allow_unacknowledged=False)
