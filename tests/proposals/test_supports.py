"""Supports and follows: one per person, withdrawable, counters, the threshold for council review, the
htmx partial and the no-JS redirect, and concurrent double supports on both databases."""

from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy import update

from app.database import new_session, utcnow
from app.models import User
from proposals import notifications, supports
from proposals.lifecycle import ProposalError
from proposals.models import Follow, Proposal, Support
from tests.conftest import make_settings, query
from tests.proposals.proposal_helpers import get, make_proposal


def _supports(db, proposal_id: int) -> list[Support]:
    return query(db, Support, Support.proposal_id == proposal_id)


def test_support_and_withdraw_without_javascript(client, db, make_user, login):
    """POST then redirect back; the count and the button change; withdrawing removes the row."""
    p = make_proposal(db, make_user())
    fan = make_user()
    login(fan)
    response = client.post_form(f"/proposals/{p.id}/support", {"next": f"/proposals/{p.id}"})
    assert response.status_code == 303 and response.headers["location"] == f"/proposals/{p.id}"
    assert get(db, p.id).support_count == 1 and len(_supports(db, p.id)) == 1
    page = client.get(f"/proposals/{p.id}").text
    assert "Meine Unterstützung zurückziehen" in page and f'action="/proposals/{p.id}/unsupport"' in page
    # supporting twice is harmless: still one row
    client.post_form(f"/proposals/{p.id}/support")
    assert get(db, p.id).support_count == 1 and len(_supports(db, p.id)) == 1
    assert client.post_form(f"/proposals/{p.id}/unsupport").status_code == 303
    assert get(db, p.id).support_count == 0 and _supports(db, p.id) == []
    client.post_form(f"/proposals/{p.id}/unsupport")
    assert get(db, p.id).support_count == 0


def test_support_with_htmx_returns_the_partial(client, db, make_user, login):
    """htmx: the answer is the count and the button only, for the polite live region on the page."""
    p = make_proposal(db, make_user())
    login(make_user())
    token = client.csrf()
    headers = {"HX-Request": "true", "X-CSRF-Token": token}
    response = client.post(f"/proposals/{p.id}/support", headers=headers)
    assert response.status_code == 200 and "<html" not in response.text
    assert "<strong>1</strong>" in response.text and f'id="support-btn-{p.id}"' in response.text
    assert f'hx-post="/proposals/{p.id}/unsupport"' in response.text
    response = client.post(f"/proposals/{p.id}/unsupport", headers=headers)
    assert "<strong>0</strong>" in response.text and f'hx-post="/proposals/{p.id}/support"' in response.text
    page = client.get(f"/proposals/{p.id}").text
    assert f'<div id="support-{p.id}" aria-live="polite">' in page


def test_support_redirect_only_to_relative_paths(client, db, make_user, login):
    """consul #1630: next= must be a relative path."""
    p = make_proposal(db, make_user())
    login(make_user())
    response = client.post_form(f"/proposals/{p.id}/support", {"next": "//evil.example/x"})
    assert response.headers["location"] == f"/proposals/{p.id}"


def test_no_support_for_own_proposal(client, db, make_user, login):
    author = make_user()
    p = make_proposal(db, author)
    login(author)
    assert client.post_form(f"/proposals/{p.id}/support").status_code == 403
    assert _supports(db, p.id) == []
    assert "Sie können Ihren eigenen Vorschlag nicht unterstützen." in client.get(f"/proposals/{p.id}").text


@pytest.mark.parametrize("status", ["draft", "accepted", "rejected", "implemented", "withdrawn"])
def test_support_only_while_open(client, db, make_user, login, status):
    """Only published proposals and proposals under review can be supported (drafts are not even visible)."""
    p = make_proposal(db, make_user(), status=status, staff=make_user("staff"))
    login(make_user())
    expected = 404 if status == "draft" else 403
    assert client.post_form(f"/proposals/{p.id}/support").status_code == expected
    assert _supports(db, p.id) == []


def test_supporting_under_review_is_allowed(client, db, make_user, login):
    p = make_proposal(db, make_user(), status="under_review", staff=make_user("staff"))
    login(make_user())
    assert client.post_form(f"/proposals/{p.id}/support").status_code == 303
    assert get(db, p.id).support_count == 1


def test_anonymous_support_goes_to_login(client, db, make_user):
    p = make_proposal(db, make_user())
    response = client.post_form(f"/proposals/{p.id}/support")
    assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
    assert "Melden Sie sich an, um diesen Vorschlag zu unterstützen" in client.get(f"/proposals/{p.id}").text


def test_service_refuses_own_and_closed_proposals(db, make_user):
    """The service checks the rules too (not only the route's permission)."""
    author, other = make_user(), make_user()
    p = make_proposal(db, author, status="withdrawn")
    settings = make_settings(db)
    with new_session(db.engine) as s:
        with pytest.raises(ProposalError):
            supports.support(
                s, proposal=s.get(Proposal, p.id), user=s.get(User, author.id), settings=settings
            )
        with pytest.raises(ProposalError):
            supports.support(s, proposal=s.get(Proposal, p.id), user=s.get(User, other.id), settings=settings)


# --- threshold -----------------------------------------------------------------------------------------------


@pytest.fixture
def staff_spy(monkeypatch):
    calls = []
    real = notifications.notify_staff

    def spy(db, **kwargs):
        calls.append((kwargs["proposal"].id, kwargs["kind"]))
        return real(db, **kwargs)

    monkeypatch.setattr(notifications, "notify_staff", spy)
    return calls


@pytest.mark.parametrize("settings_overrides", [{"support_threshold": 3, "support_window_days": 30}])
def test_threshold_marks_for_review_once(client, db, make_user, login, staff_spy):
    """At SUPPORT_THRESHOLD supports the proposal is marked for council review (badge, staff filter, review
    queue) and staff are notified once; withdrawing and supporting again does not notify again."""
    p = make_proposal(db, make_user(), title="Bald im Rat")
    fans = [make_user() for _ in range(4)]
    for fan in fans[:2]:
        login(fan)
        client.post_form(f"/proposals/{p.id}/support")
    assert get(db, p.id).review_requested_at is None and staff_spy == []
    login(fans[2])
    client.post_form(f"/proposals/{p.id}/support")
    marked = get(db, p.id)
    assert marked.review_requested_at is not None and staff_spy == [(p.id, "review")]
    client.post_form(f"/proposals/{p.id}/unsupport")
    client.post_form(f"/proposals/{p.id}/support")
    login(fans[3])
    client.post_form(f"/proposals/{p.id}/support")
    assert staff_spy == [(p.id, "review")] and get(db, p.id).review_requested_at == marked.review_requested_at
    assert "Zur Prüfung durch den Rat vorgemerkt" in client.get(f"/proposals/{p.id}").text
    login(make_user("staff"))
    assert "Bald im Rat" in client.get("/proposals/review").text
    assert "Bald im Rat" in client.get("/proposals?review=1").text


@pytest.mark.parametrize("settings_overrides", [{"support_threshold": 2, "support_window_days": 30}])
def test_threshold_counts_only_the_window(client, db, make_user, login, staff_spy):
    """Supports older than SUPPORT_WINDOW_DAYS do not count towards the threshold."""
    p = make_proposal(db, make_user())
    login(make_user())
    client.post_form(f"/proposals/{p.id}/support")
    with db.engine.begin() as conn:
        conn.execute(update(Support).values(created_at=utcnow() - dt.timedelta(days=31)))
    login(make_user())
    client.post_form(f"/proposals/{p.id}/support")
    assert get(db, p.id).review_requested_at is None and staff_spy == []
    login(make_user())
    client.post_form(f"/proposals/{p.id}/support")
    assert get(db, p.id).review_requested_at is not None and staff_spy == [(p.id, "review")]


# --- concurrency -----------------------------------------------------------------------------------------------


def _run_concurrently(db, n: int, work) -> list[BaseException]:
    barrier = threading.Barrier(n)
    errors: list[BaseException] = []

    def worker(i: int) -> None:
        try:
            barrier.wait(timeout=30)
            with new_session(db.engine, write=True) as s:  # as the app opens POST requests
                work(s, i)
                s.commit()
        except BaseException as exc:  # noqa: BLE001 - collected for the assertion
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    return errors


def test_concurrent_double_support_leaves_one_row(db, make_user):
    """CVE-2023-47634 / consul #2415: 20 simultaneous supports of one person on separate sessions (threads)
    leave exactly one row and support_count 1, without errors, on SQLite and PostgreSQL."""
    p = make_proposal(db, make_user())
    fan = make_user()
    settings = make_settings(db)
    results: list[bool] = []

    def work(s, _i):
        results.append(
            supports.support(s, proposal=s.get(Proposal, p.id), user=s.get(User, fan.id), settings=settings)
        )

    assert _run_concurrently(db, 20, work) == []
    assert len(_supports(db, p.id)) == 1 and get(db, p.id).support_count == 1
    assert sorted(results) == [False] * 19 + [True]


def test_concurrent_supports_of_many_people_are_all_counted(db, make_user):
    """20 different people at the same moment: 20 rows and support_count 20 (no lost counter update)."""
    p = make_proposal(db, make_user())
    fans = [make_user() for _ in range(20)]
    settings = make_settings(db)

    def work(s, i):
        supports.support(s, proposal=s.get(Proposal, p.id), user=s.get(User, fans[i].id), settings=settings)

    assert _run_concurrently(db, 20, work) == []
    assert len(_supports(db, p.id)) == 20 and get(db, p.id).support_count == 20


def test_concurrent_support_and_withdraw_keep_the_counter_right(db, make_user):
    """Supports and withdrawals racing each other: the counter always equals the number of rows."""
    p = make_proposal(db, make_user())
    fans = [make_user() for _ in range(10)]
    settings = make_settings(db)
    with new_session(db.engine) as s:
        for fan in fans[:5]:
            supports.support(s, proposal=s.get(Proposal, p.id), user=s.get(User, fan.id), settings=settings)
        s.commit()

    def work(s, i):
        fan = s.get(User, fans[i % 10].id)
        if i % 10 < 5:
            supports.unsupport(s, proposal=s.get(Proposal, p.id), user=fan)
        else:
            supports.support(s, proposal=s.get(Proposal, p.id), user=fan, settings=settings)

    assert _run_concurrently(db, 20, work) == []
    rows = _supports(db, p.id)
    assert get(db, p.id).support_count == len(rows) == 5
    assert {r.user_id for r in rows} == {f.id for f in fans[5:]}


# --- follow ---------------------------------------------------------------------------------------------------


def test_follow_and_unfollow(client, db, make_user, login):
    """Anyone signed in follows and unfollows (htmx partial or redirect); the author follows automatically."""
    author = make_user()
    p = make_proposal(db, author)
    assert [f.user_id for f in query(db, Follow, Follow.proposal_id == p.id)] == [author.id]
    reader = make_user()
    login(reader)
    assert client.post_form(f"/proposals/{p.id}/follow").status_code == 303
    assert client.post_form(f"/proposals/{p.id}/follow").status_code == 303
    assert len(query(db, Follow, Follow.user_id == reader.id)) == 1
    token = client.csrf()
    response = client.post(
        f"/proposals/{p.id}/unfollow", headers={"HX-Request": "true", "X-CSRF-Token": token}
    )
    assert response.status_code == 200 and f'hx-post="/proposals/{p.id}/follow"' in response.text
    assert query(db, Follow, Follow.user_id == reader.id) == []
    login(author)
    assert client.post_form(f"/proposals/{p.id}/unfollow").status_code == 303
    assert query(db, Follow, Follow.proposal_id == p.id) == []


def test_follow_needs_login_and_visibility(client, db, make_user, login):
    draft = make_proposal(db, make_user(), status="draft")
    published = make_proposal(db, make_user())
    assert client.post_form(f"/proposals/{published.id}/follow").headers["location"].startswith("/login")
    login(make_user())
    assert client.post_form(f"/proposals/{draft.id}/follow").status_code == 404
    assert query(db, Follow, Follow.proposal_id == draft.id) != [] and len(query(db, Follow)) == 2
