"""Helpers of the operations tests: real ``mitmachen serve`` processes on free 127.0.0.1 ports against a
fresh database of their own (SQLite file or a new PostgreSQL database), killed with SIGKILL on purpose and
always stopped by the fixtures; the load driver and the checks of bench/load_ballots.py.

The ``ops_db`` fixture is parametrised like the rest of the suite: SQLite always, PostgreSQL when
TEST_DATABASE_URL is set (CI)."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench import load_ballots as lb
from bench.pages import process_stats
from tests.conftest import BACKENDS, TEST_DATABASE_URL, free_port

ROOT = Path(__file__).resolve().parents[2]


@dataclass
class OpsDatabase:
    backend: str
    url: str
    data_dir: Path


@pytest.fixture(params=BACKENDS)
def ops_db(request, tmp_path) -> Iterator[OpsDatabase]:
    """A fresh, empty database for one test (migrated by ``seed``), dropped afterwards."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    if request.param == "postgresql":
        name = f"mitmachen_ops_{os.getpid()}_{uuid.uuid4().hex[:6]}"
        url = lb.create_pg_database(TEST_DATABASE_URL, name)
        try:
            yield OpsDatabase("postgresql", url, data_dir)
        finally:
            lb.drop_pg_database(TEST_DATABASE_URL, name)
    else:
        yield OpsDatabase("sqlite", f"sqlite:///{tmp_path / 'ops.sqlite3'}", data_dir)


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid`` (from /proc), zombies left out."""
    return sorted(
        child for child, fields in process_stats().items() if int(fields[1]) == pid and fields[0] != "Z"
    )


class Serve:
    """``mitmachen serve`` in its own process group on 127.0.0.1; logs to a file."""

    def __init__(self, db: OpsDatabase, *, workers: int = 2, port: int | None = None, url: str | None = None):
        self.db, self.workers = db, workers
        self.port = port or free_port()
        self.database_url = url or db.url
        self.log_path = db.data_dir / f"serve-{self.port}-{uuid.uuid4().hex[:4]}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 45.0) -> Serve:
        env = lb.server_env(self.database_url, self.db.data_dir)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                lb.serve_argv(self.port, self.workers),
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mitmachen serve exited with {self.proc.returncode}:\n{self.tail()}")
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1.0).status_code == 200 and (
                    self.workers == 1 or len(self.worker_pids()) == self.workers
                ):
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"mitmachen serve not ready after {timeout:.0f} s:\n{self.tail()}")

    def worker_pids(self) -> list[int]:
        """The uvicorn worker processes (children of the supervisor; none with one worker)."""
        if self.proc is None or self.workers == 1:
            return []
        return [pid for pid in children(self.proc.pid) if b"spawn_main" in _cmdline(pid)]

    def kill_all(self) -> None:
        """SIGKILL to the whole process group: supervisor and workers die at once, nothing is flushed."""
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=10)
        except ProcessLookupError:
            pass

    def tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def _cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


@pytest.fixture
def serve(ops_db) -> Iterator:
    """A factory of started ``Serve`` processes; every one is stopped at the end of the test."""
    started: list[Serve] = []

    def factory(**kwargs) -> Serve:
        server = Serve(ops_db, **kwargs)
        started.append(server)
        return server.start()

    yield factory
    for server in started:
        server.stop()


class Load:
    """The load driver of bench/load_ballots.py in a background thread, its outcomes visible while it
    runs."""

    def __init__(self, plan: lb.Plan, voters: list[lb.Voter], ports: list[int] | None = None):
        self.outcomes: list[lb.Outcome] = []
        self._thread = threading.Thread(
            target=lb.drive, args=(plan, voters, ports, self.outcomes), name="ballot-load", daemon=True
        )

    def start(self) -> Load:
        self._thread.start()
        return self

    def acknowledged(self) -> int:
        return sum(1 for o in list(self.outcomes) if o.acknowledged)

    def wait_for(self, count: int, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while self.acknowledged() < count:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise AssertionError(f"only {self.acknowledged()} ballots acknowledged, waited for {count}")
            time.sleep(0.02)

    def join(self, timeout: float = 120.0) -> list[lb.Outcome]:
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the load did not finish in time"
        return self.outcomes


def plan_for(seeded: lb.Seeded, port: int, *, connections: int = 12, seconds: float = 50.0) -> lb.Plan:
    """Retrying clients: a ballot whose answer was lost or a 5xx is sent again (a ballot replaces the
    voter's previous one, so a repeat is harmless: the same selection again is "unchanged")."""
    return lb.Plan(
        port=port,
        process_id=seeded.process_id,
        connections=connections,
        deadline=time.monotonic() + seconds,
        receipt_share=1.0,
        retry=True,
        retry_pause=0.1,
        timeout=20.0,
    )


def assert_consistent(ops_db: OpsDatabase, seeded: lb.Seeded, outcomes: list[lb.Outcome]) -> None:
    """Every resident's ballot acknowledged and stored exactly once, the receipts match, nothing
    half-written, and the audit bundle passes ``mitmachen verify``."""
    missing = [o for o in outcomes if not o.acknowledged]
    assert len(outcomes) == len(seeded.voters) and not missing, [o.problem for o in missing[:5]]
    assert not [o.problem for o in outcomes if o.problem][:5]
    assert not [s for o in outcomes for s in o.statuses if s >= 500 and s != 503]
    problems = lb.check_store(seeded, outcomes, allow_unacknowledged=False)
    assert not problems, problems
    code, output = lb.verify_bundle(ops_db.url, ops_db.data_dir, seeded.process_id)
    assert code == 0, output
