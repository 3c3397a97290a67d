"""Where units of work run (WEB_THREADS, app/web.py ``_lane``): with WEB_THREADS=1 on the event loop's own
thread, one at a time, so a second request waits for the first, while a handler marked ``long=True``
(exports, imports) runs on the shared pool and never holds up the short requests; WEB_THREADS > 1 gives
the worker that many threads of its own and 0 shares anyio's pool."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from app.web import view
from tests.conftest import Client

started = threading.Event()
release = threading.Event()


def _blocking(request, db):
    started.set()
    assert release.wait(10)
    return PlainTextResponse("blocking done")


def _quick(request, db):
    return PlainTextResponse("quick")


def _where(request, db):
    return PlainTextResponse(str(threading.get_ident()))


async def _loop_thread(request):
    asyncio.get_running_loop()  # an async endpoint runs on the loop's thread
    return PlainTextResponse(str(threading.get_ident()))


def _add_routes(app) -> None:
    app.router.routes += [
        Route("/_test/where", view(_where)),
        Route("/_test/loop-thread", _loop_thread),
        Route("/_test/blocking", view(_blocking)),
        Route("/_test/blocking-long", view(long=True)(_blocking)),
        Route("/_test/quick", view(_quick)),
    ]


def _race(app, first: str) -> tuple[float, list[str]]:
    """Start ``first`` (which blocks until released), then time a quick request meanwhile."""
    started.clear()
    release.clear()
    answers: list[str] = []
    with Client(app, base_url="http://testserver") as client:
        blocker = threading.Thread(target=lambda: answers.append(client.get(first).text))
        blocker.start()
        assert started.wait(10)
        quick: list[float] = []

        def ask() -> None:
            t0 = time.monotonic()
            answers.append(client.get("/_test/quick").text)
            quick.append(time.monotonic() - t0)

        asker = threading.Thread(target=ask)
        asker.start()
        asker.join(0.5)
        waited = asker.is_alive()  # still waiting behind the blocking unit of work
        release.set()
        asker.join(10)
        blocker.join(10)
    return waited, sorted(answers)


@pytest.mark.parametrize("settings_overrides", [{"web_threads": 1}])
def test_one_thread_runs_one_unit_of_work_at_a_time(app):
    _add_routes(app)
    waited, answers = _race(app, "/_test/blocking")
    assert waited, "the quick request ran beside the blocking one although WEB_THREADS=1"
    assert answers == ["blocking done", "quick"]


@pytest.mark.parametrize("settings_overrides", [{"web_threads": 1}])
def test_long_handlers_run_on_the_shared_pool(app):
    _add_routes(app)
    waited, answers = _race(app, "/_test/blocking-long")
    assert not waited, "a long handler held up the worker's own thread"
    assert answers == ["blocking done", "quick"]


@pytest.mark.parametrize("settings_overrides", [{"web_threads": 0}, {"web_threads": 2}])
def test_more_threads_or_the_shared_pool_run_side_by_side(app):
    _add_routes(app)
    waited, answers = _race(app, "/_test/blocking")
    assert not waited
    assert answers == ["blocking done", "quick"]


@pytest.mark.parametrize(
    ("settings_overrides", "on_loop"),
    [({"web_threads": 1}, True), ({"web_threads": 2}, False), ({"web_threads": 0}, False)],
)
def test_one_unit_at_a_time_runs_on_the_event_loops_thread(app, on_loop):
    """WEB_THREADS=1 hands nothing to another thread (no queue, no wake-ups, no GIL ping-pong between two
    threads); with more threads or the shared pool the unit of work runs off the loop."""
    _add_routes(app)
    with Client(app, base_url="http://testserver") as client:
        loop_thread = client.get("/_test/loop-thread").text
        ran_on = {client.get("/_test/where").text for _ in range(3)}
    assert (ran_on == {loop_thread}) is on_loop
