"""Reporting: anyone can report with a category; duplicates count once; abuse cases (mass reports, deleted
items, oversized or invalid input) are rejected with nothing written."""

from __future__ import annotations

import pytest

from app.database import utcnow
from moderation.models import Flag
from tests.conftest import query
from tests.proposals.factories import make_comment, make_proposal


def _report(client, item_type, item_id, category="insult", explanation="Beleidigend", **kw):
    return client.post_form(
        f"/report/{item_type}/{item_id}", {"category": category, "explanation": explanation}, **kw
    )


def test_anonymous_visitor_reports_a_comment(db, client, make_user):
    """Art. 16: any visitor can report; the IP is stored only as a keyed hash."""
    comment = make_comment(db, make_proposal(db, make_user()), make_user())
    form = client.get(f"/report/comment/{comment.id}")
    assert form.status_code == 200 and 'id="f-category"' in form.text
    r = _report(client, "comment", comment.id)
    assert r.status_code == 200 and 'class="flash flash-success" role="status"' in r.text
    [flag] = query(db, Flag)
    assert (
        flag.reporter_id is None
        and flag.reporter_key.startswith("ip:")
        and "testclient" not in flag.reporter_key
    )
    assert (flag.item_type, flag.item_id, flag.category) == ("comment", comment.id, "insult")


@pytest.mark.parametrize("item_type", ["proposal", "comment", "attachment", "profile"])
def test_every_item_type_can_be_reported(db, client, make_user, login, item_type):
    """Proposals, comments, attachments and profiles have a report form."""
    from app.database import new_session
    from proposals.models import Attachment

    author = make_user()
    proposal = make_proposal(db, author)
    ids = {"proposal": proposal.id, "profile": author.id, "comment": make_comment(db, proposal, author).id}
    with new_session(db.engine) as s:
        a = Attachment(
            proposal_id=proposal.id,
            uploader_id=author.id,
            storage_name="x" * 32,
            original_name="plan.pdf",
            content_type="application/pdf",
            size=10,
            sha256="0" * 64,
        )
        s.add(a)
        s.commit()
        ids["attachment"] = a.id
    login(make_user())
    assert _report(client, item_type, ids[item_type], category="spam").status_code == 200
    assert [(f.item_type, f.item_id) for f in query(db, Flag)] == [(item_type, ids[item_type])]


def test_same_reporter_counts_once(db, client, make_user, login):
    """Reporting the same item twice counts once (UNIQUE reporter key per item); another person counts."""
    proposal = make_proposal(db, make_user())
    login(make_user())
    _report(client, "proposal", proposal.id)
    r = _report(client, "proposal", proposal.id, category="spam")
    assert r.status_code == 200
    assert len(query(db, Flag)) == 1
    client.post_form("/logout")
    login(make_user())
    _report(client, "proposal", proposal.id)
    assert len(query(db, Flag)) == 2


def test_deleted_or_missing_items_cannot_be_reported(db, client, make_user):
    """Reports of deleted comments and unknown items: 404, nothing stored."""
    proposal = make_proposal(db, make_user())
    deleted = make_comment(db, proposal, make_user(), deleted_at=utcnow())
    assert _report(client, "comment", deleted.id).status_code == 404
    assert _report(client, "comment", 999999).status_code == 404
    assert client.get("/report/ballot/1").status_code == 404
    assert query(db, Flag) == []


def test_oversized_or_invalid_input(db, client, make_user):
    """Oversized explanation and unknown category: 400 with field errors, nothing stored (V2.2.1)."""
    proposal = make_proposal(db, make_user())
    r = _report(client, "proposal", proposal.id, explanation="x" * 2001)
    assert r.status_code == 400 and 'id="e-explanation"' in r.text
    r = _report(client, "proposal", proposal.id, category="nonsense")
    assert r.status_code == 400 and 'id="e-category"' in r.text
    r = _report(client, "proposal", proposal.id, explanation="a\x00b")
    assert r.status_code == 400
    assert query(db, Flag) == []


def test_xss_in_explanation_is_escaped_in_the_queue(db, client, make_user, login):
    """CVE-2024-32034: report texts are escaped in moderation views."""
    proposal = make_proposal(db, make_user())
    _report(client, "proposal", proposal.id, explanation="<script>alert(1)</script>")
    login(make_user("moderator"))
    page = client.get(f"/moderation/items/proposal/{proposal.id}").text
    assert "<script>alert(1)" not in page and "&lt;script&gt;alert(1)" in page


class TestRateLimit:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_limit_enabled": True, "rate_limit_post": "3/3600"}

    def test_mass_reports_are_rate_limited(self, db, client, make_user):
        """V2.4.1: reports are rate-limited per IP (429 with Retry-After), under their own key."""
        proposals = [make_proposal(db, make_user(), title=f"Vorschlag {i}") for i in range(5)]
        codes = [_report(client, "proposal", p.id).status_code for p in proposals]
        assert codes[:3] == [200, 200, 200] and codes[3:] == [429, 429]
        assert len(query(db, Flag)) == 3


def test_signed_in_reporter_learns_the_outcome(db, client, make_user, login, mailbox):
    """Logged-in reporters get a confirmation on the page and the outcome by mail (in their language)."""
    from tests.moderation.conftest import hide_item

    comment = make_comment(db, make_proposal(db, make_user()), make_user())
    reporter = make_user(locale="en")
    login(reporter)
    assert "Thank you. Our moderators will review your report." in _report(client, "comment", comment.id).text
    client.post_form("/logout")
    login(make_user("moderator"))
    hide_item(client, db, "comment", comment.id, ground="rules-respect", statement="Beleidigung")
    [mail] = mailbox.to(reporter.email)
    assert "decided: Hide." in mailbox.body(mail)


def test_report_links_on_proposal_page(db, client, make_user):
    """The proposal page offers a report link for the proposal and each comment."""
    proposal = make_proposal(db, make_user())
    comment = make_comment(db, proposal, make_user())
    page = client.get(f"/proposals/{proposal.id}").text
    assert f'href="/report/proposal/{proposal.id}"' in page and f'href="/report/comment/{comment.id}"' in page


def test_htmx_report_errors_return_the_form_partial(db, client, make_user):
    """With htmx an invalid report answers with the form partial (errors next to the fields), not a page."""
    proposal = make_proposal(db, make_user())
    r = client.post(
        f"/report/proposal/{proposal.id}",
        data={"category": "", "csrf_token": client.csrf()},
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 400 and 'id="e-category"' in r.text and "<html" not in r.text
    assert r.headers["x-moderation-swap"] == "1"
