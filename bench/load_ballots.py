"""Ballot load test: N distinct residents cast their ballots against ``mitmachen serve --workers 2`` on
127.0.0.1 as fast as the machine allows, then the store and the audit log are checked.

    .venv/bin/python -m bench.load_ballots                          # SQLite in a temporary directory
    .venv/bin/python -m bench.load_ballots --db postgresql         # a fresh PostgreSQL database
    .venv/bin/python -m bench.load_ballots --ballots 2000 --concurrency 32 --clients 2

What it does:

1. seeds a fresh database directly (migrations, then bulk inserts): N confirmed residents, one server-side
   session each (a ``user_session`` row, as ``app.sessions.start_session`` writes it) and the signed
   session cookie Starlette's SessionMiddleware would set for it (``{"sid", "csrf"}`` signed with the
   deployment's secret by itsdangerous' TimestampSigner) — no password hashing, no test-only route in the
   app; and an approval vote with eight projects, opened through ``voting.lifecycle.open_voting``;
2. starts ``mitmachen serve --workers W`` on a free port of 127.0.0.1 (ENVIRONMENT=development, rate limits
   on, as in production);
3. drives it from ``--clients`` processes with ``--concurrency`` keep-alive connections in total (a minimal
   asyncio HTTP/1.1 client: httpx costs the load generator several times more CPU per request); each
   resident POSTs one ballot to ``/processes/{id}/ballot/cast`` (303 to the receipt = acknowledged) and
   fetches the receipt JSON (``--receipts``, default all) and checks it names a ballot, its leaf index, the
   entry hash and a signed head that covers the entry. Bounded by the count and by ``--time-limit``;
4. checks afterwards: every acknowledged ballot is stored exactly once with the selection that was sent
   (through the voter links, whose keyed hashes the script recomputes), the number of ballots, voter links
   and ``ballot.cast`` log entries agree, the log indices are contiguous, no answer was a 5xx, and the
   audit bundle (``mitmachen log bundle``) passes ``mitmachen verify`` (exit 0);
5. prints ballots/s, p50/p90/p99 latency of the cast request, the servers' CPU time per ballot (and the
   PostgreSQL server's, when it runs on this machine) and the errors. Exit status 0 when every check
   passed (the throughput goal is reported, not enforced, because the machine may be shared), 1 otherwise.

A PostgreSQL run creates ``mitmachen_load_<pid>`` on the server of ``--database-url`` (default: $TEST_DATABASE_URL
or postgresql+psycopg://postgres@127.0.0.1:5432/postgres) and drops it at the end (``--keep`` keeps it).
The helpers (seeding, cookies, the client, the checks) are reused by the fault tests in tests/ops/.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import datetime as dt
import json
import multiprocessing
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
MAX_BALLOTS = 200_000
MAX_TIME_LIMIT = 3600
GOAL_BALLOTS_PER_SECOND = 500
SECRET_KEY = "load-test-secret-" + "k" * 40
BATCH = 5000
PROJECTS = [
    ("Radweg Talachse", 180_000_00),
    ("Stadtbäume", 120_000_00),
    ("Spielplätze", 95_000_00),
    ("Bibliothek am Abend", 60_000_00),
    ("Nachbarschaftsfonds", 40_000_00),
    ("Trinkbrunnen", 48_000_00),
    ("WLAN im Park", 55_000_00),
    ("Beleuchtung Unterführung", 75_000_00),
]


# --- seeding ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Voter:
    user_id: int
    cookie: str  # the signed session cookie value
    csrf: str
    selection: str  # JSON list of project ids


@dataclass
class Seeded:
    database_url: str
    process_id: int
    project_ids: list[int]
    voters: list[Voter]
    secret_key: str = SECRET_KEY


def session_cookie(secret_key: str, session: dict) -> str:
    """The cookie value Starlette's SessionMiddleware writes for ``session`` (base64 JSON, signed with a
    timestamp by itsdangerous under the app's secret key)."""
    import itsdangerous

    data = base64.b64encode(json.dumps(session).encode("utf-8"))
    return itsdangerous.TimestampSigner(secret_key).sign(data).decode("utf-8")


def _batches(rows: Iterable[dict], size: int = BATCH) -> Iterable[list[dict]]:
    batch: list[dict] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def seed(database_url: str, residents: int, *, secret_key: str = SECRET_KEY, rng_seed: int = 7) -> Seeded:
    """Migrate the fresh database and add ``residents`` confirmed residents with a session each and one
    open approval vote; returns the voters with their cookies and the selections they will cast."""
    import importlib

    from sqlalchemy import func, insert, select

    from app.database import make_engine, new_session, utcnow
    from app.main import models_modules
    from app.migrations import upgrade
    from app.models import Role, User, UserSession
    from app.security import token_digest
    from app.settings import Settings
    from voting import lifecycle
    from voting.models import Process, Project

    for module in models_modules():
        importlib.import_module(module)
    upgrade(database_url)
    engine = make_engine(Settings(environment="development", database_url=database_url))
    rng = random.Random(rng_seed)
    now = utcnow()
    try:
        with engine.connect() as conn:
            first = int(conn.execute(select(func.coalesce(func.max(User.id), 0))).scalar_one()) + 1
        ids = range(first, first + residents)
        tokens = {uid: (secrets.token_urlsafe(32), secrets.token_urlsafe(24)) for uid in ids}
        users = (
            {
                "id": uid,
                "email": f"waehlerin{uid}@example.org",
                "password_hash": None,
                "display_name": f"Wählerin {uid}",
                "role": Role.RESIDENT.value,
                "locale": "de",
                "district_id": None,
                "is_name_public": False,
                "created_at": now,
                "email_confirmed_at": now,
                "password_changed_at": None,
            }
            for uid in ids
        )
        sessions = (
            {
                "token_hash": token_digest(tokens[uid][0]),
                "user_id": uid,
                "created_at": now,
                "last_seen_at": now,
                "user_agent": "bench/load_ballots",
            }
            for uid in ids
        )
        with engine.begin() as conn:
            for batch in _batches(users):
                conn.execute(insert(User.__table__), batch)
            for batch in _batches(sessions):
                conn.execute(insert(UserSession.__table__), batch)
        if engine.dialect.name == "postgresql":
            from sqlalchemy import text

            with engine.begin() as conn:
                conn.execute(
                    text(
                        "SELECT setval(pg_get_serial_sequence('\"user\"', 'id'), (SELECT max(id) FROM \"user\"))"
                    )
                )
        with new_session(engine, write=True) as db:
            process = Process(
                slug=f"last-{uuid.uuid4().hex[:8]}",
                title="Bürgerbudget Lasttest",
                budget_cents=500_000_00,
                ballot_type="approval",
                rule="greedy",
                voting_starts_at=now - dt.timedelta(hours=1),
                voting_ends_at=now + dt.timedelta(days=7),
            )
            db.add(process)
            db.flush()
            for position, (title, cost) in enumerate(PROJECTS):
                db.add(Project(process_id=process.id, title=title, cost_cents=cost, position=position))
            db.flush()
            lifecycle.open_voting(db, process=process, now=now)
            db.commit()
            process_id = int(process.id)
            project_ids = [p.id for p in lifecycle.get_scope(db, db.get(Process, process_id), 0).projects]
        voters = []
        for uid in ids:
            sid, csrf = tokens[uid]
            chosen = sorted(rng.sample(project_ids, rng.randint(1, 3)))
            voters.append(
                Voter(uid, session_cookie(secret_key, {"sid": sid, "csrf": csrf}), csrf, json.dumps(chosen))
            )
    finally:
        engine.dispose()
    return Seeded(database_url, process_id, project_ids, voters, secret_key)


# --- databases ------------------------------------------------------------------------------------------


def create_pg_database(admin_url: str, name: str) -> str:
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


def local_postmaster(url: str) -> int | None:
    """The process id of the PostgreSQL server behind ``url`` when it runs on this machine and its
    processes can be read here (the parent of this connection's backend), else None."""
    from sqlalchemy import create_engine, make_url, text

    from bench.pages import stat_fields

    if make_url(url).host not in (None, "", "127.0.0.1", "localhost", "::1"):
        return None
    engine = create_engine(make_url(url))
    try:
        with engine.connect() as conn:
            backend = int(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
        parent = int(stat_fields(backend)[1])
        if not Path(f"/proc/{parent}/comm").read_text().startswith("postgres"):
            return None
        return parent
    except (OSError, ValueError, IndexError):
        return None
    finally:
        engine.dispose()


def drop_pg_database(admin_url: str, name: str) -> None:
    from sqlalchemy import create_engine, make_url, text

    admin = create_engine(make_url(admin_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def server_env(
    database_url: str, data_dir: Path, secret_key: str = SECRET_KEY, **extra: str
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "TEST_DATABASE"))}
    env.update(
        ENVIRONMENT="development",
        SECRET_KEY=secret_key,
        DATABASE_URL=database_url,
        DATA_DIR=str(data_dir),
        BASE_URL="http://127.0.0.1:8000",
        MAIL_BACKEND="log",
        PYTHONUNBUFFERED="1",
    )
    env.update(extra)
    return env


def serve_argv(port: int, workers: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--host",
        HOST,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


# --- a minimal HTTP/1.1 client (keep-alive, one request at a time per connection) ---------------------------


class HTTPError(Exception):
    """The connection failed or closed before a complete answer arrived."""


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes


class Connection:
    """One keep-alive HTTP/1.1 connection to 127.0.0.1; reconnects after the server closed it."""

    def __init__(self, port: int, timeout: float = 30.0) -> None:
        self.port, self.timeout = port, timeout
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def _open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(HOST, self.port)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None

    async def request(
        self, method: str, path: str, *, cookie: str = "", form: dict[str, str] | None = None
    ) -> Answer:
        try:
            # asyncio.timeout, not wait_for: no extra task per request (the generator shares the two cores)
            async with asyncio.timeout(self.timeout):
                return await self._request(method, path, cookie, form)
        except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError, IndexError) as exc:
            self.close()
            raise HTTPError(f"{type(exc).__name__}: {exc}") from exc

    async def _request(self, method: str, path: str, cookie: str, form: dict[str, str] | None) -> Answer:
        if self.writer is None:
            await self._open()
        assert self.reader is not None and self.writer is not None
        body = urlencode(form).encode() if form is not None else b""
        head = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}", "Accept: */*"]
        if cookie:
            head.append(f"Cookie: session={cookie}")
        if form is not None:
            head += ["Content-Type: application/x-www-form-urlencoded", f"Content-Length: {len(body)}"]
        self.writer.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body)
        # The whole head in one read (one await per answer, not one per header line: the load generator
        # shares the two cores with the servers it measures).
        head_block = await self.reader.readuntil(b"\r\n\r\n")
        lines = head_block[:-4].decode("latin-1").split("\r\n")
        if not lines or not lines[0]:
            raise HTTPError("connection closed")
        status = int(lines[0].split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            value = value.strip()
            headers[name] = f"{headers[name]}, {value}" if name in headers and name != "set-cookie" else value
        if "content-length" in headers:
            data = await self.reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
                if size == 0:
                    await self.reader.readuntil(b"\r\n")
                    break
                chunks.append(await self.reader.readexactly(size))
                await self.reader.readexactly(2)
            data = b"".join(chunks)
        else:
            data = await self.reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        return Answer(status, headers, data)


# --- the load ---------------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """What one resident saw: the cast's final status (0: no answer), latency, the receipt."""

    user_id: int
    status: int = 0
    latency_ms: float = 0.0
    attempts: int = 0
    receipt_status: int = 0
    receipt: dict | None = None
    problem: str = ""
    statuses: list[int] = field(default_factory=list)  # every answer, retries included
    port: int = 0  # the server that acknowledged it

    @property
    def acknowledged(self) -> bool:
        return self.status == 303


@dataclass
class Plan:
    port: int
    process_id: int
    connections: int
    deadline: float  # time.monotonic() (system-wide on Linux, so shared by the client processes)
    receipt_share: float = 1.0
    retry: bool = False  # retry a ballot after a failed or 5xx answer until acknowledged or the deadline
    retry_pause: float = 0.2
    timeout: float = 30.0


def check_receipt(receipt: dict, process_id: int) -> str:
    """'' when the receipt names a ballot, its index, the entry hash and a signed head covering it."""
    head = receipt.get("head") or {}
    if receipt.get("log") != f"process:{process_id}":
        return "receipt names another log"
    if not isinstance(receipt.get("ballot"), str) or len(receipt["ballot"]) != 32:
        return "receipt without ballot id"
    if not isinstance(receipt.get("index"), int) or len(str(receipt.get("entry_hash", ""))) != 64:
        return "receipt without index or entry hash"
    if not isinstance(head.get("size"), int) or head["size"] <= receipt["index"] or not head.get("signature"):
        return "receipt head does not cover the entry"
    return ""


async def _drive(
    plan: Plan, voters: Sequence[Voter], port_of: list[int] | None = None, sink: list[Outcome] | None = None
) -> list[Outcome]:
    queue = list(reversed(voters))
    outcomes: list[Outcome] = [] if sink is None else sink
    rng = random.Random(len(voters))
    cast_path = f"/processes/{plan.process_id}/ballot/cast"
    receipt_path = f"/processes/{plan.process_id}/receipt.json?scope=0"
    ports = port_of or [plan.port]

    async def worker(k: int) -> None:
        conn = Connection(ports[k % len(ports)], plan.timeout)
        try:
            while queue and time.monotonic() < plan.deadline:
                voter = queue.pop()
                out = Outcome(voter.user_id, port=conn.port)
                outcomes.append(out)
                form = {"csrf_token": voter.csrf, "scope": "0", "selection": voter.selection}
                while True:
                    out.attempts += 1
                    t0 = time.perf_counter()
                    try:
                        answer = await conn.request("POST", cast_path, cookie=voter.cookie, form=form)
                        out.status = answer.status
                        out.statuses.append(answer.status)
                    except HTTPError as exc:
                        answer, out.status, out.problem = None, 0, str(exc)
                        out.statuses.append(0)
                    out.latency_ms = (time.perf_counter() - t0) * 1000
                    done = answer is not None and (answer.status < 500 or answer.status == 501)
                    if done or not plan.retry or time.monotonic() >= plan.deadline:
                        break
                    await asyncio.sleep(plan.retry_pause)
                if out.acknowledged:
                    out.problem = ""
                    if not answer.headers.get("location", "").startswith(
                        f"/processes/{plan.process_id}/receipt"
                    ):
                        out.problem = "acknowledged without the receipt's address"
                    elif rng.random() < plan.receipt_share:
                        await _fetch_receipt(conn, plan, voter, out, receipt_path)
                elif answer is not None and not out.problem:
                    out.problem = f"cast answered {answer.status}: {answer.body[:200]!r}"
        finally:
            conn.close()

    await asyncio.gather(*(worker(k) for k in range(max(1, min(plan.connections, len(voters))))))
    return outcomes


async def _fetch_receipt(conn: Connection, plan: Plan, voter: Voter, out: Outcome, path: str) -> None:
    while True:  # once, or with ``plan.retry`` until it arrives or the deadline passes
        try:
            answer = await conn.request("GET", path, cookie=voter.cookie)
        except HTTPError as exc:
            out.receipt_status, out.problem = 0, f"receipt: {exc}"
        else:
            out.receipt_status = answer.status
            out.statuses.append(answer.status)
            if answer.status == 200:
                out.receipt = json.loads(answer.body)
                out.problem = check_receipt(out.receipt, plan.process_id)
                return
            out.problem = f"receipt answered {answer.status}"
        if not plan.retry or time.monotonic() >= plan.deadline:
            return
        await asyncio.sleep(plan.retry_pause)


def drive(
    plan: Plan, voters: Sequence[Voter], ports: list[int] | None = None, sink: list[Outcome] | None = None
) -> list[Outcome]:
    """Cast the voters' ballots with ``plan.connections`` connections in this process (asyncio; uvloop
    when installed). ``ports``: spread the connections over several servers; ``sink``: a list the outcomes
    are appended to as they start (to watch the progress from another thread)."""
    try:
        import uvloop

        runner = uvloop.run
    except ImportError:  # pragma: no cover
        runner = asyncio.run
    return runner(_drive(plan, voters, ports, sink))


def _drive_slice(args: tuple[Plan, list[Voter]]) -> tuple[list[Outcome], float, float]:
    plan, voters = args
    started = time.monotonic()
    outcomes = drive(plan, voters)
    return outcomes, started, time.monotonic()


def drive_parallel(plan: Plan, voters: Sequence[Voter], clients: int) -> tuple[list[Outcome], float]:
    """Split the voters and connections over ``clients`` processes; returns the outcomes and the elapsed
    wall time from the first client's start to the last one's end."""
    clients = max(1, min(clients, plan.connections))
    if clients == 1:
        started = time.monotonic()
        outcomes = drive(plan, voters)
        return outcomes, time.monotonic() - started
    slices = [list(voters[i::clients]) for i in range(clients)]
    plans = [
        Plan(
            **{**plan.__dict__, "connections": plan.connections // clients + (i < plan.connections % clients)}
        )
        for i in range(clients)
    ]
    with multiprocessing.get_context("fork").Pool(clients) as pool:
        parts = pool.map(_drive_slice, list(zip(plans, slices, strict=True)))
    outcomes = [o for part, _s, _e in parts for o in part]
    return outcomes, max(e for _p, _s, e in parts) - min(s for _p, s, _e in parts)


# --- the checks ---------------------------------------------------------------------------------------------


@dataclass
class Stored:
    """What the database holds for the vote."""

    ballots: dict[str, tuple[str, int, int | None]]  # ballot_uid -> (selection, version, log_index)
    links: dict[str, list[str]]  # voter_hash -> ballot_uids
    log: list[tuple[int, str, bytes]]  # (idx, type, entry) in index order


def read_store(database_url: str, process_id: int) -> Stored:
    from sqlalchemy import select

    from app.database import make_engine
    from app.settings import Settings
    from voting.models import Ballot, LogEntry, VoterLink

    engine = make_engine(Settings(environment="development", database_url=database_url))
    try:
        with engine.connect() as conn:
            if engine.dialect.name == "postgresql":  # one snapshot for the three reads (SQLite: always)
                conn.execution_options(isolation_level="REPEATABLE READ")
            ballots = {
                uid: (sel, int(version), log_index)
                for uid, sel, version, log_index in conn.execute(
                    select(Ballot.ballot_uid, Ballot.selection, Ballot.version, Ballot.log_index).where(
                        Ballot.process_id == process_id
                    )
                )
            }
            links: dict[str, list[str]] = {}
            for voter_hash, uid in conn.execute(
                select(VoterLink.voter_hash, VoterLink.ballot_uid).where(VoterLink.process_id == process_id)
            ):
                links.setdefault(voter_hash, []).append(uid)
            log = [
                (int(idx), kind, bytes(entry))
                for idx, kind, entry in conn.execute(
                    select(LogEntry.idx, LogEntry.entry_type, LogEntry.entry)
                    .where(LogEntry.log_id == f"process:{process_id}")
                    .order_by(LogEntry.idx)
                )
            ]
    finally:
        engine.dispose()
    return Stored(ballots, links, log)


def check_store(
    seeded: Seeded, outcomes: Sequence[Outcome], *, allow_unacknowledged: bool = True
) -> list[str]:
    """Problems (empty: fine): every acknowledged ballot stored exactly once with its selection, the
    receipts match the store, one ballot per link and one ``ballot.*`` log entry per stored version, log
    indices contiguous, every stored ballot's log entry is its current version; ballots stored without an
    acknowledgement (the answer was lost) are allowed only when ``allow_unacknowledged``."""
    from voting.ballots import voter_hash

    stored = read_store(seeded.database_url, seeded.process_id)
    problems: list[str] = []
    by_user = {v.user_id: v for v in seeded.voters}
    acked = {o.user_id: o for o in outcomes if o.acknowledged}
    hashes = {voter_hash(seeded.secret_key, seeded.process_id, uid): uid for uid in by_user}
    for h, uids in stored.links.items():
        if h not in hashes:
            problems.append(f"a voter link of no seeded resident ({h[:12]}…)")
        if len(uids) != 1:
            problems.append(f"{len(uids)} links for one voter")
    linked = {hashes.get(h): uids[0] for h, uids in stored.links.items()}
    for uid, out in acked.items():
        ballot_uid = linked.get(uid)
        if ballot_uid is None or ballot_uid not in stored.ballots:
            problems.append(f"acknowledged ballot of resident {uid} is not stored")
            continue
        selection = stored.ballots[ballot_uid][0]
        if json.loads(selection) != json.loads(by_user[uid].selection):
            problems.append(f"resident {uid}: stored selection {selection} differs from the one sent")
        if out.receipt is not None and out.receipt.get("ballot") != ballot_uid:
            problems.append(f"resident {uid}: the receipt names another ballot")
    unacked = [uid for uid in linked if uid not in acked]
    if unacked and not allow_unacknowledged:
        problems.append(f"{len(unacked)} ballots stored without an acknowledgement")
    if set(linked.values()) != set(stored.ballots):
        problems.append("ballots and voter links do not correspond one to one")
    indices = [idx for idx, _t, _e in stored.log]
    if indices != list(range(len(indices))):
        problems.append("log indices are not contiguous from 0")
    versions: dict[str, int] = {}
    entry_at: dict[int, dict] = {}
    for idx, kind, raw in stored.log:
        entry = json.loads(raw)
        if entry.get("index") != idx or entry.get("type") != kind:
            problems.append(f"log entry {idx} does not match its row")
        if kind in ("ballot.cast", "ballot.replaced"):
            payload = entry["payload"]
            versions[payload["ballot"]] = versions.get(payload["ballot"], 0) + 1
            entry_at[idx] = payload
    for ballot_uid, (selection, version, log_index) in stored.ballots.items():
        if versions.get(ballot_uid) != version:
            problems.append(
                f"ballot {ballot_uid[:8]}…: version {version}, {versions.get(ballot_uid)} log entries"
            )
        payload = entry_at.get(log_index) if log_index is not None else None
        if (
            payload is None
            or payload["ballot"] != ballot_uid
            or payload["selection"] != json.loads(selection)
        ):
            problems.append(f"ballot {ballot_uid[:8]}… is not its log entry {log_index}")
    if set(versions) - set(stored.ballots):
        problems.append("log entries of ballots that are not stored (half-written)")
    return problems[:50]


def verify_bundle(
    database_url: str, data_dir: Path, process_id: int, secret_key: str = SECRET_KEY
) -> tuple[int, str]:
    """Write the process's audit bundle with ``mitmachen log bundle`` and check it with ``mitmachen verify``;
    (exit status of verify, its output)."""
    env = server_env(database_url, data_dir, secret_key)
    target = data_dir / f"bundle-{process_id}-{uuid.uuid4().hex[:6]}.zip"
    cli = [sys.executable, "-m", "app.cli"]
    made = subprocess.run(
        [*cli, "log", "bundle", "--log", f"process:{process_id}", "-o", str(target)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    if made.returncode != 0:
        return made.returncode, made.stdout + made.stderr
    checked = subprocess.run(
        [*cli, "verify", str(target)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    target.unlink(missing_ok=True)
    return checked.returncode, (checked.stdout + checked.stderr).strip()


# --- the run --------------------------------------------------------------------------------------------


def percentile(values: Sequence[float], share: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def add_database_arguments(parser: argparse.ArgumentParser) -> None:
    """``--db sqlite|postgresql`` and ``--database-url`` (the PostgreSQL server a temporary database is
    created on; also used by bench/cast_cpu.py)."""
    parser.add_argument("--db", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument(
        "--database-url",
        default=os.environ.get("TEST_DATABASE_URL")
        or "postgresql+psycopg://postgres@127.0.0.1:5432/postgres",
        help="PostgreSQL server to create a temporary database on (with --db postgresql)",
    )


def main(argv: list[str] | None = None) -> int:
    from bench.pages import Server, free_port, tree_cpu_seconds

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add_database_arguments(parser)
    parser.add_argument("--ballots", type=int, default=20_000, help="residents, one ballot each (20000)")
    parser.add_argument("--concurrency", type=int, default=64, help="connections in total (64)")
    parser.add_argument("--clients", type=int, default=2, help="load-generating processes (2)")
    parser.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (2)")
    parser.add_argument("--time-limit", type=float, default=300, help="seconds of load at most (300)")
    parser.add_argument(
        "--receipts", type=float, default=1.0, help="share of voters fetching the receipt (1)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the database (and print where it is)")
    args = parser.parse_args(argv)
    if not 1 <= args.ballots <= MAX_BALLOTS:
        parser.error(f"--ballots must be 1..{MAX_BALLOTS}")
    if not 1 <= args.concurrency <= 1024 or not 1 <= args.clients <= 16 or not 1 <= args.workers <= 16:
        parser.error("--concurrency 1..1024, --clients 1..16, --workers 1..16")
    if not 1 <= args.time_limit <= MAX_TIME_LIMIT or not 0 <= args.receipts <= 1:
        parser.error(f"--time-limit 1..{MAX_TIME_LIMIT}, --receipts 0..1")

    tmp = Path(tempfile.mkdtemp(prefix="mitmachen-load-"))
    pg_name = None
    server = None
    try:
        if args.db == "postgresql":
            pg_name = f"mitmachen_load_{os.getpid()}"
            url = create_pg_database(args.database_url, pg_name)
        else:
            url = f"sqlite:///{tmp / 'load.sqlite3'}"
        t0 = time.perf_counter()
        seeded = seed(url, args.ballots)
        print(
            f"seeded {args.ballots} residents and process {seeded.process_id} in {time.perf_counter() - t0:.1f} s"
        )
        port = free_port()
        server = Server("app", serve_argv(port, args.workers), port, server_env(url, tmp), tmp)
        server.wait_ready()
        postmaster = local_postmaster(url) if args.db == "postgresql" else None
        db_cpu0 = tree_cpu_seconds(postmaster, reaped=True) if postmaster else 0.0
        cpu0 = server.cpu_seconds()
        plan = Plan(
            port, seeded.process_id, args.concurrency, time.monotonic() + args.time_limit, args.receipts
        )
        outcomes, elapsed = drive_parallel(plan, seeded.voters, args.clients)
        cpu = server.cpu_seconds() - cpu0
        db_cpu = tree_cpu_seconds(postmaster, reaped=True) - db_cpu0 if postmaster else None
        statuses = [s for o in outcomes for s in o.statuses]
        acked = [o for o in outcomes if o.acknowledged]
        errors = [o for o in outcomes if o.problem]
        server_errors = sum(1 for s in statuses if s >= 500)
        latencies = [o.latency_ms for o in acked]
        rate = len(acked) / elapsed if elapsed else 0.0
        print(
            f"{args.db}: {len(acked)} of {len(seeded.voters)} ballots acknowledged in {elapsed:.1f} s "
            f"({args.concurrency} connections, {args.clients} client processes, {args.workers} workers, "
            f"receipts {args.receipts:.0%})"
        )
        print(
            f"  {rate:.0f} ballots/s   cast latency p50 {percentile(latencies, 0.5):.1f} ms, "
            f"p90 {percentile(latencies, 0.9):.1f} ms, p99 {percentile(latencies, 0.99):.1f} ms   "
            f"server CPU {1000 * cpu / max(1, len(acked)):.2f} ms/ballot"
        )
        if db_cpu is not None:
            # The whole local server (autovacuum, other databases too); backends that ended during the run
            # (the app replaces its connections every 10 s) count through the server's reaped children.
            print(f"  PostgreSQL server CPU {1000 * db_cpu / max(1, len(acked)):.2f} ms/ballot")
        print(f"  errors: {len(errors)}, 5xx answers: {server_errors}, load average {os.getloadavg()[0]:.1f}")
        for o in errors[:5]:
            print(f"    resident {o.user_id}: {o.problem}")
        server.stop()
        server = None
        problems = check_store(seeded, outcomes, allow_unacknowledged=False)
        code, output = verify_bundle(url, tmp, seeded.process_id)
        print(f"  store: {'consistent' if not problems else '; '.join(problems[:5])}")
        print(f"  mitmachen verify: exit {code}: {output.splitlines()[-1] if output else ''}")
        goal = "met" if rate >= GOAL_BALLOTS_PER_SECOND else "missed"
        print(f"  goal {GOAL_BALLOTS_PER_SECOND} ballots/s: {goal}")
        ok = (
            not problems
            and code == 0
            and not server_errors
            and not errors
            and len(acked) == len(seeded.voters)
        )
        if args.keep:
            print(f"  database kept: {url}")
            pg_name = None
        return 0 if ok else 1
    finally:
        if server is not None:
            server.stop()
        if pg_name:
            drop_pg_database(args.database_url, pg_name)
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
