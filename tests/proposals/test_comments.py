"""Comments over HTTP: posting and replying with and without htmx, threading depth, editing within the
window, soft deletion, votes, sorting, closed discussions, rate limits, bad input, the permission matrix,
IDOR, XSS (corpus and property-based) and concurrent double votes on both databases."""

from __future__ import annotations

import datetime as dt
import re
import threading

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from app.database import new_session, utcnow
from app.models import User
from app.sanitize import render_markdown
from proposals import comments
from proposals.models import Comment, CommentVote, Notification, Proposal
from tests.conftest import query
from tests.proposals.factories import follow, make_comment, make_proposal, reload

HX = {"HX-Request": "true"}


def hx(client) -> dict[str, str]:
    return {**HX, "X-CSRF-Token": client.csrf()}


def post_comment(client, proposal_id: int, body: str, **extra):
    return client.post_form(f"/proposals/{proposal_id}/comments", {"body": body, **extra})


def stored(db, proposal_id: int) -> list[Comment]:
    return sorted(query(db, Comment, Comment.proposal_id == proposal_id), key=lambda c: c.id)


@pytest.fixture
def author(make_user):
    return make_user(name="Anna Autorin")


@pytest.fixture
def proposal(db, author):
    return make_proposal(db, author)


# --- posting ----------------------------------------------------------------------------------------------


def test_post_comment_without_javascript(client, db, make_user, login, proposal):
    """A plain form post stores the Markdown and its sanitised HTML, counts it, and redirects (PRG) to the
    comment's anchor on the proposal page, which then shows it."""
    login(make_user(name="Bernd Bürger"))
    response = post_comment(client, proposal.id, "Sehr **gute** Idee!")
    [comment] = stored(db, proposal.id)
    assert response.status_code == 303
    assert response.headers["location"] == f"/proposals/{proposal.id}#comment-{comment.id}"
    assert (
        comment.body_md == "Sehr **gute** Idee!"
        and comment.body_html == "<p>Sehr <strong>gute</strong> Idee!</p>\n"
    )
    assert comment.depth == 0 and comment.parent_id is None
    assert reload(db, Proposal, proposal.id).comment_count == 1
    page = client.get(f"/proposals/{proposal.id}").text
    assert f'id="comment-{comment.id}"' in page and "<strong>gute</strong>" in page and "Bernd Bürger" in page
    assert "1 Kommentar" in page and "Ihr Kommentar wurde veröffentlicht." in page


def test_post_comment_with_htmx_returns_the_new_comment(client, db, make_user, login, proposal):
    """htmx: only the new comment comes back, appended to the list, with out-of-band updates of the form,
    the count and the polite status region; nothing else of the page."""
    login(make_user())
    response = client.post(
        f"/proposals/{proposal.id}/comments", data={"body": "Per htmx"}, headers=hx(client)
    )
    [comment] = stored(db, proposal.id)
    assert response.status_code == 200 and "<html" not in response.text
    assert response.headers["HX-Retarget"] == "#comment-list" and response.headers["HX-Reswap"] == "beforeend"
    html = response.text
    assert html.lstrip().startswith(f'<li id="comment-{comment.id}"')
    assert 'id="comment-form-new"' in html and 'hx-swap-oob="true"' in html
    assert '<p id="comment-count" hx-swap-oob="innerHTML">1 Kommentar</p>' in html
    assert (
        '<div id="comment-status" hx-swap-oob="innerHTML">Ihr Kommentar wurde veröffentlicht.</div>' in html
    )
    # sorted newest first, a new top-level comment goes to the top
    response = client.post(
        f"/proposals/{proposal.id}/comments",
        data={"body": "Noch einer", "sort": "newest"},
        headers=hx(client),
    )
    assert response.headers["HX-Reswap"] == "afterbegin"


def test_the_proposal_page_offers_the_form_only_where_allowed(client, db, make_user, login, proposal):
    """Anonymous visitors get a login link; signed-in people the form; the section has a live region."""
    page = client.get(f"/proposals/{proposal.id}").text
    assert (
        f'href="/login?next=/proposals/{proposal.id}%23comments"' in page
        and 'id="comment-form-new"' not in page
    )
    assert 'id="comment-status" class="visually-hidden" role="status" aria-live="polite"' in page
    login(make_user())
    page = client.get(f"/proposals/{proposal.id}").text
    assert 'id="comment-form-new"' in page and 'for="f-body"' in page


def test_replies_nest_up_to_depth_four_then_stay_flat(client, db, make_user, login, proposal):
    """Each reply goes one level deeper up to depth 4; a reply to a depth-4 comment joins the same parent
    at depth 4, and the person answered is still notified."""
    people = [make_user(name=f"Person {i}") for i in range(6)]
    parent = make_comment(db, proposal, people[0], "Ebene 0")
    chain = [parent]
    for i in range(1, 6):
        login(people[i])
        response = post_comment(client, proposal.id, f"Ebene {i}", parent_id=str(chain[-1].id))
        assert response.status_code == 303
        chain.append(stored(db, proposal.id)[-1])
    assert [c.depth for c in chain] == [0, 1, 2, 3, 4, 4]
    assert chain[5].parent_id == chain[3].id  # flat: same parent as the depth-4 comment it answers
    replies = query(db, Notification, Notification.kind == "reply")
    assert {(n.user_id, n.comment_id) for n in replies} == {
        (chain[i - 1].author_id, chain[i].id) for i in range(1, 6)
    }
    assert reload(db, Proposal, proposal.id).comment_count == 6


def test_reply_with_htmx_goes_into_the_parent_and_closes_the_form(
    client, db, make_user, login, proposal, author
):
    """The reply form opens inline (htmx GET), the reply is appended to the parent's replies and the reply
    slot is emptied out of band; ``?close=1`` closes the form."""
    parent = make_comment(db, proposal, author, "Frage?")
    login(make_user())
    form = client.get(f"/comments/{parent.id}/reply", headers=HX)
    assert form.status_code == 200 and "<html" not in form.text
    assert f'id="comment-form-r{parent.id}"' in form.text and f'value="{parent.id}"' in form.text
    assert "autofocus" in form.text and f'id="f-body-r{parent.id}"' in form.text
    assert client.get(f"/comments/{parent.id}/reply?close=1", headers=HX).text == ""
    response = client.post(
        f"/proposals/{proposal.id}/comments",
        data={"body": "Antwort", "parent_id": str(parent.id)},
        headers=hx(client),
    )
    assert response.status_code == 200
    assert response.headers["HX-Retarget"] == f"#replies-{parent.id}"
    assert f'<div id="reply-slot-{parent.id}" hx-swap-oob="innerHTML"></div>' in response.text


def test_reply_form_without_javascript_is_a_page(client, db, make_user, login, proposal, author):
    """Without JavaScript, the reply link opens a page quoting the comment with the reply form."""
    parent = make_comment(db, proposal, author, "Eine *Frage*")
    login(make_user())
    page = client.get(f"/comments/{parent.id}/reply")
    assert page.status_code == 200 and "<h1>Auf einen Kommentar antworten</h1>" in page.text
    assert "<em>Frage</em>" in page.text and 'name="parent_id"' in page.text


@pytest.mark.parametrize(
    "body, message",
    [
        ("", "Bitte schreiben Sie einen Kommentar."),
        ("   \n ", "Bitte schreiben Sie einen Kommentar."),
        ("x" * 5001, "Bitte geben Sie höchstens 5000 Zeichen ein."),
    ],
)
def test_bad_bodies_are_refused(client, db, make_user, login, proposal, body, message):
    """Empty and over-long bodies: 400 with the message next to the field, nothing written."""
    login(make_user())
    response = post_comment(client, proposal.id, body)
    assert response.status_code == 400
    assert f'<p class="error" id="e-body">{message}</p>' in response.text
    assert 'aria-invalid="true"' in response.text
    assert stored(db, proposal.id) == [] and reload(db, Proposal, proposal.id).comment_count == 0
    response = client.post(f"/proposals/{proposal.id}/comments", data={"body": body}, headers=hx(client))
    assert response.status_code == 400 and response.headers["X-Comments-Swap"] == "1"
    assert "<html" not in response.text and message in response.text


def test_a_body_of_exactly_5000_characters_is_fine(client, db, make_user, login, proposal):
    login(make_user())
    assert post_comment(client, proposal.id, "y" * 5000).status_code == 303
    assert len(stored(db, proposal.id)[0].body_md) == 5000


def test_reply_to_a_comment_of_another_proposal_or_a_deleted_one(
    client, db, make_user, login, proposal, author
):
    """A parent from another proposal, an unknown or malformed parent id, and a deleted parent are all
    refused with 400 (decision: deleted comments cannot be answered); nothing is written."""
    other = make_proposal(db, author, title="Ein anderer Vorschlag mit Titel")
    foreign = make_comment(db, other, author)
    deleted = make_comment(db, proposal, author, deleted_at=utcnow())
    login(make_user())
    for parent_id in (str(foreign.id), "999999", "abc", "1e3", "-1"):
        response = post_comment(client, proposal.id, "Antwort", parent_id=parent_id)
        assert response.status_code == 400, parent_id
    response = post_comment(client, proposal.id, "Antwort", parent_id=str(deleted.id))
    assert response.status_code == 400 and "nicht mehr beantwortet" in response.text
    assert client.get(f"/comments/{deleted.id}/reply").status_code == 400
    assert [c.id for c in stored(db, proposal.id)] == [deleted.id]
    assert len(stored(db, other.id)) == 1


@pytest.mark.parametrize("status", ["rejected", "implemented", "withdrawn"])
def test_comments_close_with_the_proposal(client, db, make_user, login, author, status):
    """Closed proposals take no comments, replies, edits or votes (403 with a reason); the page says so.
    Deleting one's own comment stays possible."""
    p = make_proposal(db, author, status=status)
    mine = make_comment(db, p, make_user())
    theirs = make_comment(db, p, author)
    with new_session(db.engine) as s:
        me = s.get(User, mine.author_id)
    login(me)
    response = post_comment(client, p.id, "Zu spät")
    assert response.status_code == 403 and "Kommentare zu diesem Vorschlag sind geschlossen." in response.text
    assert post_comment(client, p.id, "Zu spät", parent_id=str(theirs.id)).status_code == 403
    assert client.get(f"/comments/{theirs.id}/reply").status_code == 403
    assert client.post_form(f"/comments/{mine.id}/edit", {"body": "neu"}).status_code == 403
    assert client.post_form(f"/comments/{theirs.id}/vote", {"value": "1"}).status_code == 403
    page = client.get(f"/proposals/{p.id}").text
    assert "Kommentare zu diesem Vorschlag sind geschlossen." in page and 'id="comment-form-new"' not in page
    assert f'action="/comments/{theirs.id}/vote"' not in page
    assert client.post_form(f"/comments/{mine.id}/delete").status_code == 303
    assert len(stored(db, p.id)) == 2
    assert reload(db, Comment, mine.id).deleted_at is not None


def test_locked_comments_and_drafts(client, db, make_user, login, author):
    """A proposal with comments_locked_at set takes no comments (403); a draft is not found (404)."""
    locked = make_proposal(db, author, comments_locked_at=utcnow())
    draft = make_proposal(db, author, status="draft")
    login(make_user())
    assert post_comment(client, locked.id, "Hallo").status_code == 403
    assert post_comment(client, draft.id, "Hallo").status_code == 404
    assert post_comment(client, 999999, "Hallo").status_code == 404
    login(author)
    assert post_comment(client, draft.id, "Hallo").status_code == 404
    assert query(db, Comment) == []


class TestRateLimit:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_limit_enabled": True, "rate_limit_post": "2/3600", "rate_limit_login": "100/60"}

    def test_posting_is_rate_limited_per_user(self, client, db, make_user, login, proposal):
        """ASVS V2.4.1: RATE_LIMIT_POST applies per user: the third post in the window is refused with 429
        (page and htmx); nothing more is written."""
        login(make_user())
        assert post_comment(client, proposal.id, "eins").status_code == 303
        assert post_comment(client, proposal.id, "zwei").status_code == 303
        response = post_comment(client, proposal.id, "drei")
        assert response.status_code == 429 and "Retry-After" in response.headers
        response = client.post(
            f"/proposals/{proposal.id}/comments", data={"body": "vier"}, headers=hx(client)
        )
        assert response.status_code == 429 and response.headers["HX-Retarget"] == "#comment-alert"
        assert "Zu viele Versuche" in response.text and "<html" not in response.text
        assert len(stored(db, proposal.id)) == 2


# --- editing ----------------------------------------------------------------------------------------------


def test_edit_own_comment_within_the_window(client, db, make_user, login, proposal):
    """The author edits within the window: new text and HTML, marked "bearbeitet" with edited_at."""
    me = make_user()
    c = make_comment(db, proposal, me, "Erste Fassung")
    login(me)
    form = client.get(f"/comments/{c.id}/edit")
    assert form.status_code == 200 and "Erste Fassung" in form.text and 'id="f-body-e' in form.text
    response = client.post_form(f"/comments/{c.id}/edit", {"body": "Zweite *Fassung*"})
    assert response.status_code == 303 and response.headers["location"].endswith(f"#comment-{c.id}")
    c2 = reload(db, Comment, c.id)
    assert (
        c2.body_md == "Zweite *Fassung*" and "<em>Fassung</em>" in c2.body_html and c2.edited_at is not None
    )
    page = client.get(f"/proposals/{proposal.id}").text
    assert "(bearbeitet" in page
    response = client.post(f"/comments/{c.id}/edit", data={"body": "Dritte"}, headers=hx(client))
    assert response.status_code == 200 and response.text.lstrip().startswith(
        f'<article id="comment-article-{c.id}"'
    )
    assert "Ihr Kommentar wurde gespeichert." in response.text
    assert client.post_form(f"/comments/{c.id}/edit", {"body": ""}).status_code == 400
    assert reload(db, Comment, c.id).body_md == "Dritte"


def test_editing_after_the_window_is_refused(client, db, make_user, login, proposal):
    """After COMMENT_EDIT_MINUTES: 403 with a clear message (page and htmx), nothing changes."""
    me = make_user()
    c = make_comment(db, proposal, me, "Alt", age=dt.timedelta(minutes=16))
    login(me)
    for response in (
        client.get(f"/comments/{c.id}/edit"),
        client.post_form(f"/comments/{c.id}/edit", {"body": "Neu"}),
    ):
        assert response.status_code == 403
        assert (
            "Kommentare können nur innerhalb von 15 Minuten nach dem Schreiben bearbeitet werden."
            in response.text
        )
    response = client.post(f"/comments/{c.id}/edit", data={"body": "Neu"}, headers=hx(client))
    assert response.status_code == 403 and response.headers["X-Comments-Swap"] == "1"
    assert reload(db, Comment, c.id).body_md == "Alt" and reload(db, Comment, c.id).edited_at is None
    assert f'href="/comments/{c.id}/edit"' not in client.get(f"/proposals/{proposal.id}").text


# --- deleting ---------------------------------------------------------------------------------------------


def test_delete_keeps_the_thread_and_never_shows_the_text_again(
    client, db, make_user, login, proposal, author
):
    """Soft delete: the row stays as "Kommentar gelöscht" with its replies, the text is wiped from the
    database, the page and the API, and the count drops."""
    me = make_user(name="Dora Delete")
    c = make_comment(db, proposal, me, "Geheimer Text 4711")
    r = make_comment(db, proposal, author, "Antwort darauf", parent=c)
    login(me)
    assert client.get(f"/comments/{c.id}/delete").status_code == 200
    response = client.post_form(f"/comments/{c.id}/delete")
    assert (
        response.status_code == 303 and response.headers["location"] == f"/proposals/{proposal.id}#comments"
    )
    row = reload(db, Comment, c.id)
    assert row.deleted_at is not None and row.body_md == "" and row.body_html == ""
    assert reload(db, Proposal, proposal.id).comment_count == 1
    page = client.get(f"/proposals/{proposal.id}").text
    assert "Geheimer Text 4711" not in page and "Kommentar gelöscht" in page and "Antwort darauf" in page
    assert f'id="comment-{r.id}"' in page
    api = client.get(f"/api/v1/proposals/{proposal.id}/comments").text
    assert "Geheimer Text 4711" not in api and "Dora Delete" not in api
    assert client.post_form(f"/comments/{c.id}/delete").status_code == 403  # already deleted
    assert reload(db, Proposal, proposal.id).comment_count == 1


def test_deleted_leaf_comments_disappear(client, db, make_user, login, proposal):
    """A deleted comment without replies is not shown at all; with htmx the answer is the placeholder."""
    me = make_user()
    c = make_comment(db, proposal, me, "Weg damit")
    login(me)
    response = client.post(f"/comments/{c.id}/delete", headers=hx(client))
    assert response.status_code == 200 and "Kommentar gelöscht" in response.text
    assert '<p id="comment-count" hx-swap-oob="innerHTML">Noch keine Kommentare.</p>' in response.text
    assert f'id="comment-{c.id}"' not in client.get(f"/proposals/{proposal.id}").text


# --- votes ------------------------------------------------------------------------------------------------


def test_vote_switch_and_remove(client, db, make_user, login, proposal, author):
    """Up, then down (switch), then remove; a repeated vote changes nothing; counters stay exact."""
    c = make_comment(db, proposal, author)
    login(make_user())

    def state():
        row = reload(db, Comment, c.id)
        votes = [v.value for v in query(db, CommentVote, CommentVote.comment_id == c.id)]
        return row.score, row.upvotes, row.downvotes, votes

    assert client.post_form(f"/comments/{c.id}/vote", {"value": "1"}).status_code == 303
    assert state() == (1, 1, 0, [1])
    client.post_form(f"/comments/{c.id}/vote", {"value": "1"})
    assert state() == (1, 1, 0, [1])
    client.post_form(f"/comments/{c.id}/vote", {"value": "-1"})
    assert state() == (-1, 0, 1, [-1])
    page = client.get(f"/proposals/{proposal.id}").text
    assert f'action="/comments/{c.id}/unvote"' in page and 'aria-pressed="true"' in page
    client.post_form(f"/comments/{c.id}/unvote")
    assert state() == (0, 0, 0, [])
    response = client.post(f"/comments/{c.id}/vote", data={"value": "1"}, headers=hx(client))
    assert response.status_code == 200 and response.text.lstrip().startswith(f'<div id="votes-{c.id}"')
    assert "1 hilfreich, 0 nicht hilfreich" in response.text and "Ihre Bewertung: hilfreich." in response.text


@pytest.mark.parametrize("value", ["0", "2", "-2", "abc", "", "1.0", "+1", "1; drop"])
def test_vote_values_other_than_plus_minus_one_are_refused(
    client, db, make_user, login, proposal, author, value
):
    """Only +1 and -1: anything else is 400 and writes nothing."""
    c = make_comment(db, proposal, author)
    login(make_user())
    assert client.post_form(f"/comments/{c.id}/vote", {"value": value}).status_code == 400
    assert client.post_form(f"/comments/{c.id}/vote").status_code == 400
    assert query(db, CommentVote) == [] and reload(db, Comment, c.id).score == 0


def test_no_votes_on_own_or_deleted_comments(client, db, make_user, login, proposal):
    me = make_user()
    mine = make_comment(db, proposal, me)
    gone = make_comment(db, proposal, make_user(), deleted_at=utcnow())
    login(me)
    assert client.post_form(f"/comments/{mine.id}/vote", {"value": "1"}).status_code == 403
    assert client.post_form(f"/comments/{gone.id}/vote", {"value": "1"}).status_code == 403
    assert query(db, CommentVote) == []
    assert f'action="/comments/{mine.id}/vote"' not in client.get(f"/proposals/{proposal.id}").text


def _concurrently(db, calls) -> list[BaseException]:
    """Run each call(session) in its own thread and write session (as a POST request has), started
    together; commit each."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call):
        try:
            barrier.wait(timeout=10)
            with new_session(db.engine, write=True) as s:
                call(s)
                s.commit()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return errors


def test_concurrent_double_votes_leave_one_row(db, make_user, proposal, author):
    """consul #2415, CVE-2023-47634: the same person votes twice at the same moment (separate sessions and
    threads): one row, exact counters; concurrent votes of different people all count."""
    c = make_comment(db, proposal, author)
    voter = make_user()

    def vote(user_id: int, value: int):
        def call(s):
            comments.set_vote(s, comment=s.get(Comment, c.id), voter=s.get(User, user_id), value=value)

        return call

    assert _concurrently(db, [vote(voter.id, 1) for _ in range(4)]) == []
    assert [v.value for v in query(db, CommentVote, CommentVote.comment_id == c.id)] == [1]
    row = reload(db, Comment, c.id)
    assert (row.score, row.upvotes, row.downvotes) == (1, 1, 0)

    others = [make_user() for _ in range(5)]
    calls = [vote(u.id, 1 if i % 2 else -1) for i, u in enumerate(others)] + [vote(voter.id, -1)]
    assert _concurrently(db, calls) == []
    votes = query(db, CommentVote, CommentVote.comment_id == c.id)
    row = reload(db, Comment, c.id)
    assert len(votes) == 6
    assert row.upvotes == sum(v.value == 1 for v in votes) and row.downvotes == sum(
        v.value == -1 for v in votes
    )
    assert row.score == sum(v.value for v in votes) == 2 - 4


def test_vote_unique_constraint_in_the_database(db, make_user, proposal, author):
    """consul #2415: the database itself refuses a second vote row for the same person and comment."""
    from sqlalchemy.exc import IntegrityError

    c = make_comment(db, proposal, author)
    voter = make_user()
    with new_session(db.engine) as s:
        s.add(CommentVote(comment_id=c.id, user_id=voter.id, value=1))
        s.add(CommentVote(comment_id=c.id, user_id=voter.id, value=-1))
        with pytest.raises(IntegrityError):
            s.commit()


# --- sorting ----------------------------------------------------------------------------------------------


def test_sort_orders_and_allowlist(db, client, make_user, proposal, author):
    """oldest / newest / best (score, then oldest); unknown sort keys fall back to oldest (CVE-2023-34090,
    CVE-2026-45376: never mapped to SQL); replies stay in conversation order."""
    a = make_comment(db, proposal, author, "A", age=dt.timedelta(minutes=30))
    b = make_comment(db, proposal, author, "B", age=dt.timedelta(minutes=20))
    c = make_comment(db, proposal, author, "C", age=dt.timedelta(minutes=10))
    r1 = make_comment(db, proposal, author, "R1", parent=a, age=dt.timedelta(minutes=5))
    r2 = make_comment(db, proposal, author, "R2", parent=a, age=dt.timedelta(minutes=1))
    with new_session(db.engine) as s:
        s.execute(update(Comment).where(Comment.id == b.id).values(score=5))
        s.execute(update(Comment).where(Comment.id == c.id).values(score=5))
        s.execute(update(Comment).where(Comment.id == r2.id).values(score=9))
        s.commit()

    def order(sort: str) -> list[int]:
        html = client.get(f"/proposals/{proposal.id}/comments?sort={sort}", headers=HX).text
        return [int(x) for x in re.findall(r'<li id="comment-(\d+)"', html)]

    assert order("oldest") == [a.id, r1.id, r2.id, b.id, c.id]
    assert order("newest") == [c.id, b.id, a.id, r1.id, r2.id]
    assert order("best") == [b.id, c.id, a.id, r1.id, r2.id]
    assert order("score desc; drop table comment") == order("oldest")
    page = client.get(f"/proposals/{proposal.id}?sort=best").text
    assert 'aria-current="true" class="active">Beste zuerst' in page
    response = client.get(f"/proposals/{proposal.id}/comments?sort=newest")
    assert (
        response.status_code == 303
        and response.headers["location"] == f"/proposals/{proposal.id}?sort=newest#comments"
    )


# --- permissions ------------------------------------------------------------------------------------------

ROLES = ["anonymous", "resident", "author", "moderator", "staff", "admin"]
ACTIONS = ["create", "reply", "edit", "delete", "vote"]
# Who may do what with Anna's comment: everyone signed in may comment and reply; only its author edits and
# deletes; everyone else signed in may vote. Moderators, staff and admins get no extra rights here.
ALLOWED = {
    "create": {"resident", "author", "moderator", "staff", "admin"},
    "reply": {"resident", "author", "moderator", "staff", "admin"},
    "edit": {"author"},
    "delete": {"author"},
    "vote": {"resident", "moderator", "staff", "admin"},
}


@pytest.mark.parametrize("role", ROLES)
def test_permission_matrix(client, db, make_user, login, role):
    """CVE-2026-40869 / ASVS V8.2.2: role × action on one comment; anonymous → login, refused → 403."""
    owner = make_user(name="Anna")
    p = make_proposal(db, owner)
    if role == "author":
        login(owner)
    elif role != "anonymous":
        login(make_user(role))
    for action in ACTIONS:
        target = make_comment(db, p, owner, f"Ziel für {action}")
        path, data = {
            "create": (f"/proposals/{p.id}/comments", {"body": "Neu"}),
            "reply": (f"/proposals/{p.id}/comments", {"body": "Antwort", "parent_id": str(target.id)}),
            "edit": (f"/comments/{target.id}/edit", {"body": "Geändert"}),
            "delete": (f"/comments/{target.id}/delete", {}),
            "vote": (f"/comments/{target.id}/vote", {"value": "1"}),
        }[action]
        response = client.post_form(path, data)
        if role == "anonymous":
            assert response.status_code == 303 and response.headers["location"].startswith("/login?next="), (
                action
            )
        elif role in ALLOWED[action]:
            assert response.status_code == 303 and "/login" not in response.headers["location"], (
                role,
                action,
            )
        else:
            assert response.status_code == 403, (role, action)
    after = {c.body_md for c in stored(db, p.id)}
    if role not in ALLOWED["edit"]:
        assert "Geändert" not in after and all(c.deleted_at is None for c in stored(db, p.id))


@pytest.mark.parametrize("role", ["resident", "moderator", "staff", "admin"])
def test_someone_elses_comment_is_refused_on_every_route(
    client, db, make_user, login, proposal, author, role
):
    """IDOR (CVE-2026-40869): edit (GET and POST) and delete (GET and POST) of another person's comment are
    403 for every role; votes on one's own comment too; unknown ids are 404."""
    theirs = make_comment(db, proposal, author, "Nicht deins")
    me = make_user(role)
    mine = make_comment(db, proposal, me)
    login(me)
    assert client.get(f"/comments/{theirs.id}/edit").status_code == 403
    assert client.post_form(f"/comments/{theirs.id}/edit", {"body": "x"}).status_code == 403
    assert client.get(f"/comments/{theirs.id}/delete").status_code == 403
    assert client.post_form(f"/comments/{theirs.id}/delete").status_code == 403
    assert (
        client.post(f"/comments/{theirs.id}/edit", data={"body": "x"}, headers=hx(client)).status_code == 403
    )
    assert client.post_form(f"/comments/{mine.id}/vote", {"value": "1"}).status_code == 403
    assert client.post_form(f"/comments/{mine.id}/unvote").status_code == 403
    row = reload(db, Comment, theirs.id)
    assert row.body_md == "Nicht deins" and row.deleted_at is None and row.edited_at is None
    for path in (
        "/comments/999999/edit",
        "/comments/999999/delete",
        "/comments/999999/vote",
        "/comments/999999/unvote",
    ):
        assert client.post_form(path, {"body": "x", "value": "1"}).status_code == 404, path
    assert client.get("/comments/999999/reply").status_code == 404


def test_comments_of_a_draft_are_not_reachable(client, db, make_user, login, author):
    """CVE-2024-27090: a comment on a proposal the viewer may not see is 404 on every route."""
    p = make_proposal(db, author)
    c = make_comment(db, p, author)
    with new_session(db.engine) as s:
        s.execute(update(Proposal).where(Proposal.id == p.id).values(status="draft"))
        s.commit()
    login(make_user())
    for path in (
        f"/comments/{c.id}",
        f"/comments/{c.id}/reply",
        f"/comments/{c.id}/edit",
        f"/proposals/{p.id}/comments",
    ):
        assert client.get(path).status_code == 404, path
    for path in (f"/comments/{c.id}/vote", f"/comments/{c.id}/delete"):
        assert client.post_form(path, {"value": "1"}).status_code == 404, path


# --- XSS --------------------------------------------------------------------------------------------------

XSS = [
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "[klick](javascript:alert(1))",
    "[klick](JaVaScRiPt:alert(1))",
    '<a href="javascript:alert(1)">x</a>',
    "<svg onload=alert(1)>",
    '"><script>alert(1)</script>',
    "<iframe src=https://evil.example></iframe>",
    "[x](data:text/html;base64,PHNjcmlwdD4=)",
    "`<script>`",
]


def _assert_no_markup(html: str) -> None:
    lowered = html.lower()
    assert "<script>alert" not in lowered and "<img" not in lowered and "<svg" not in lowered
    assert "<iframe" not in lowered
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", lowered)
    assert not re.search(r"<a\b[^>]*href=\"\s*(javascript|data):", lowered)


def test_xss_corpus_in_bodies_and_display_names(client, db, make_user, login, proposal, author):
    """CVE-2026-23891, CVE-2023-32693, ASVS V1.2.1: payloads as comment bodies and as display names never
    reach the proposal page, the htmx partials or the notifications as markup."""
    evil = make_user(name='<script>alert("n")</script><img src=x onerror=alert(2)>')
    follow(db, proposal, author)
    login(evil)
    for payload in XSS:
        response = client.post(
            f"/proposals/{proposal.id}/comments", data={"body": payload}, headers=hx(client)
        )
        assert response.status_code == 200
        _assert_no_markup(response.text)
    first = stored(db, proposal.id)[0]
    _assert_no_markup(client.get(f"/comments/{first.id}/reply").text)
    _assert_no_markup(client.get(f"/comments/{first.id}/edit").text)
    page = client.get(f"/proposals/{proposal.id}").text
    _assert_no_markup(page)
    assert "&lt;script&gt;alert(&#34;n&#34;)&lt;/script&gt;" in page
    login(author)
    _assert_no_markup(client.get("/notifications").text)


FRAGMENTS = st.sampled_from(
    [
        "<script>",
        "</script>",
        "<img src=x onerror=alert(1)>",
        "javascript:alert(1)",
        "[a](javascript:alert(1))",
        "[a](  javascript:alert(1))",
        "[a](java\tscript:alert(1))",
        "<a href='javascript:x'>",
        'onclick="x"',
        " onmouseover=alert(1) ",
        "<svg/onload=alert(1)>",
        "<",
        ">",
        "&",
        "`",
        "[",
        "](",
        ")",
        "\n\n",
        "*",
        "> ",
        "<details open ontoggle=alert(1)>",
        "&#106;avascript:alert(1)",
        "[x](&#106;avascript:alert(1))",
    ]
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.one_of(FRAGMENTS, st.text(max_size=12)), max_size=25).map("".join))
def test_markdown_to_html_never_yields_active_content(text):
    """Property (hypothesis): whatever Markdown a comment holds, its stored HTML has no <script, no on*=
    attributes and no javascript: link targets (ASVS V1.3.5, CVE-2023-32693)."""
    html = render_markdown(text).lower()
    assert "<script" not in html
    assert not re.search(r"<[a-z][^>]*\son[a-z]+\s*=", html)
    assert not re.search(r"<a\b[^>]*href=\"\s*[^\"]*script:", html)
    for tag in re.findall(r"<([a-z0-9]+)", html):
        assert tag in {
            "p",
            "br",
            "em",
            "strong",
            "ul",
            "ol",
            "li",
            "a",
            "h3",
            "h4",
            "blockquote",
            "code",
            "pre",
        }
