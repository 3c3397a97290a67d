"""Concurrent submissions against the running app (uvicorn on 127.0.0.1 in a thread, real HTTP from 50
threads), on SQLite and on PostgreSQL: one resident's racing ballots leave exactly one ballot, one voter link
and one log entry per accepted change (SECURITY.md CVE-2023-47634, consul #2415, V2.3.4); racing over-budget
knapsack ballots never produce an over-budget stored or logged ballot (consul #4061)."""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from app.main import create_app
from tests.conftest import PASSWORD, free_port, make_settings, query
from tests.voting.test_ballots import (
    APPROVAL_PROJECTS,
    ballot_state,
    log_entries,
    make_process,
    mount_voting,
    project_ids,
)
from voting.models import Ballot

THREADS = 50


@pytest.fixture
def server(db, smtp_settings) -> Iterator[str]:
    import uvicorn

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = mount_voting(create_app(make_settings(db, base_url=url, **smtp_settings), engine=db.engine))
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not uv.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            uv.should_exit = True
            pytest.fail("the server did not start")
        time.sleep(0.005)
    yield url
    uv.should_exit = True
    thread.join(timeout=10)


def logged_in(url: str, email: str) -> tuple[httpx.Cookies, str]:
    """Session cookies and CSRF token of a signed-in resident."""
    with httpx.Client(base_url=url, follow_redirects=False, timeout=60) as c:
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/login").text).group(1)
        r = c.post("/login", data={"email": email, "password": PASSWORD, "csrf_token": token})
        assert r.status_code == 303, r.text[:300]
        token = re.search(r'name="csrf_token" value="([^"]+)"', c.get("/account").text).group(1)
        return c.cookies, token


def fire(url: str, cookies: httpx.Cookies, token: str, path: str, payloads: list[dict]) -> list[int]:
    """POST every payload at once from its own thread; the final status of each (redirects followed)."""
    barrier = threading.Barrier(len(payloads))
    statuses: list[int] = [0] * len(payloads)

    def run(k: int) -> None:
        with httpx.Client(base_url=url, cookies=cookies, follow_redirects=True, timeout=120) as c:
            barrier.wait()
            statuses[k] = c.post(path, data={**payloads[k], "csrf_token": token}).status_code

    threads = [threading.Thread(target=run, args=(k,)) for k in range(len(payloads))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=180)
    return statuses


def test_fifty_concurrent_submissions_of_one_resident(db, server, make_user):
    """50 different ballots of one resident at once: every answer is 200 (after the redirect to the receipt)
    or a clean refusal, and the store holds one ballot, one link, one log entry per accepted change, with the
    version equal to the number of accepted changes."""
    process = make_process(db)
    ids = project_ids(db, process)
    user = make_user()
    cookies, token = logged_in(server, user.email)
    subsets = [c for n in (1, 2, 3) for c in itertools.combinations(ids, n)][:THREADS]
    payloads = [{"scope": "0", "selection": json.dumps(list(s))} for s in subsets]
    statuses = fire(server, cookies, token, f"/processes/{process.id}/ballot/cast", payloads)
    accepted = sum(200 <= s < 300 for s in statuses)
    assert accepted == THREADS, statuses  # none was lost: each waited for the row lock
    ballots, links, entries = ballot_state(db, process)
    assert (ballots, links) == (1, 1)
    assert entries == accepted
    (ballot,) = query(db, Ballot, Ballot.process_id == process.id)
    assert ballot.version == accepted
    logged = log_entries(db, process)
    ballot_entries = [e for e in logged if e["type"].startswith("ballot.")]
    assert [e["payload"]["version"] for e in ballot_entries] == list(range(1, accepted + 1))
    assert {e["payload"]["ballot"] for e in ballot_entries} == {ballot.ballot_uid}
    assert json.loads(ballot.selection) == ballot_entries[-1]["payload"]["selection"]
    assert [e["index"] for e in logged] == list(range(len(logged)))  # the log never forked


def test_concurrent_over_budget_knapsack_ballots_never_stick(db, server, make_user):
    """consul #4061: half of 50 racing knapsack ballots are over budget. Those are refused (400); no stored
    and no logged version ever exceeds the budget; versions count the accepted changes."""
    budget = 200_000_00
    process = make_process(db, ballot_type="knapsack", budget_cents=budget)
    ids = project_ids(db, process)
    with_costs = list(zip(ids, [p[1] for p in APPROVAL_PROJECTS], strict=True))
    combos = [c for n in (1, 2, 3, 4) for c in itertools.combinations(with_costs, n)]
    fitting = [c for c in combos if sum(cost for _p, cost in c) <= budget][: THREADS // 2]
    over = [c for c in combos if sum(cost for _p, cost in c) > budget][: THREADS - len(fitting)]
    mixed = [val for pair in itertools.zip_longest(fitting, over) for val in pair if val is not None]
    payloads = [{"scope": "0", "selection": json.dumps([p for p, _c in c])} for c in mixed]
    user = make_user()
    cookies, token = logged_in(server, user.email)
    statuses = fire(server, cookies, token, f"/processes/{process.id}/ballot/cast", payloads)
    accepted = sum(200 <= s < 300 for s in statuses)
    assert accepted == len(fitting) and statuses.count(400) == len(over), statuses
    costs = dict(with_costs)
    (ballot,) = query(db, Ballot, Ballot.process_id == process.id)
    assert sum(costs[p] for p in json.loads(ballot.selection)) <= budget
    logged = [e for e in log_entries(db, process) if e["type"].startswith("ballot.")]
    assert len(logged) == accepted == ballot.version
    assert all(sum(costs[p] for p in e["payload"]["selection"]) <= budget for e in logged)
    assert ballot_state(db, process) == (1, 1, accepted)
