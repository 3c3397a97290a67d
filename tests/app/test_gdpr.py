"""Data-subject rights: the personal-data export, account deletion with DELETED_CONTENT, secret ballots that
stay counted, and the record of processing activities."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select

from app import gdpr
from app.database import new_session
from app.models import Role, User
from app.settings import Settings, SettingsError
from proposals import comments, lifecycle, supports
from proposals.models import Comment, Follow, Proposal, Support
from tests.conftest import PASSWORD, Client, query
from tests.voting.test_ballots import cast, close, make_process, mount_voting, project_ids, theme_id
from voting import lifecycle as voting_lifecycle
from voting.models import Ballot, TallyRun, VoterLink


def contribute(db, app, author: User, other: User) -> dict[str, int]:
    """A published proposal and a draft by ``author``, a comment by each, a reply, a support and a follow."""
    settings = app.state.settings
    with new_session(db.engine, write=True) as s:
        me, them = s.get(User, author.id), s.get(User, other.id)
        theme = theme_id(db, "mobilitaet-verkehr")
        data = lifecycle.ProposalData(
            title="Fahrradbügel am Laurentiusplatz",
            summary="Mehr Abstellplätze am Platz",
            body="Es fehlen **Fahrradbügel**.",
            theme=theme,
            address="Laurentiusplatz 1",
        )
        published = lifecycle.create_proposal(s, author=me, data=data, publish=True)
        draft = lifecycle.create_proposal(
            s,
            author=me,
            data=lifecycle.ProposalData(title="Entwurf Parkbank", summary="Kurz", body="Text", theme=theme),
            publish=False,
        )
        other_proposal = lifecycle.create_proposal(
            s,
            author=them,
            data=lifecycle.ProposalData(title="Mehr Bänke", summary="Sitzen", body="Text", theme=theme),
            publish=True,
        )
        mine = comments.create_comment(s, proposal=other_proposal, author=me, body="Gute Idee, Bänke!")
        reply = comments.create_comment(
            s, proposal=other_proposal, author=them, body="Danke für die Antwort", parent=mine
        )
        supports.support(s, proposal=other_proposal, user=me, settings=settings)
        supports.follow(s, proposal=other_proposal, user=me)
        s.commit()
        return {
            "published": published.id,
            "draft": draft.id,
            "other": other_proposal.id,
            "comment": mine.id,
            "reply": reply.id,
        }


def export_via_web(client: Client, password: str = PASSWORD):
    page = client.get("/account/export")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    response = client.post_form("/account/export", {"password": password})
    return response


def test_export_needs_the_password_and_the_session_and_works_once(client, app, db, make_user, login):
    """CVE-2026-45377: the GDPR export download needs the session, is short-lived and single-use.
    ASVS V7.5.1: re-authentication (password) before the export; ASVS V14.2.1: Cache-Control: no-store."""
    user, other = make_user(name="Erika Muster"), make_user()
    ids = contribute(db, app, user, other)
    login(user)

    wrong = export_via_web(client, "not my password")
    assert wrong.status_code == 400 and "location" not in wrong.headers
    assert client.post_form("/account/export", {}).status_code == 400

    response = export_via_web(client)
    assert response.status_code == 303
    link = response.headers["location"]
    assert re.fullmatch(r"/account/export/[A-Za-z0-9_.\-]+", link)

    download = client.get(link)
    assert download.status_code == 200
    assert download.headers["cache-control"] == "no-store"
    assert download.headers["content-type"].startswith("application/json")
    assert re.fullmatch(
        r'attachment; filename="mitmachen-data-\d+-\d{8}\.json"', download.headers["content-disposition"]
    )
    data = download.json()
    assert data["format"] == "mitmachen-personal-data" and data["account"]["email"] == user.email
    assert data["account"]["display_name"] == "Erika Muster"
    assert "password_hash" not in download.text and "token_hash" not in download.text
    assert user.password_hash not in download.text
    assert data["sessions"] and "user_agent" in data["sessions"][0]
    records = data["records"]
    assert {p["id"] for p in records["proposal.author_id"]} == {ids["published"], ids["draft"]}
    assert [c["id"] for c in records["comment.author_id"]] == [ids["comment"]]
    assert [s["proposal_id"] for s in records["support.user_id"]] == [ids["other"]]
    assert ids["other"] in {f["proposal_id"] for f in records["follow.user_id"]}
    assert "Danke für die Antwort" not in download.text  # the other person's reply is theirs
    assert data["participation_in_votes"]["votes"] == []

    replay = client.get(link)
    assert replay.status_code == 410 and "no-store" in replay.headers["cache-control"]

    # the same link in another session of the same person, in another person's session, and anonymously
    fresh = export_via_web(client).headers["location"]
    with Client(app, base_url="http://testserver", follow_redirects=False) as second:
        login(user, c=second)
        assert second.get(fresh).status_code == 404
        with Client(app, base_url="http://testserver", follow_redirects=False) as third:
            login(other, c=third)
            assert third.get(fresh).status_code == 404
    with Client(app, base_url="http://testserver", follow_redirects=False) as anonymous:
        assert anonymous.get(fresh).status_code == 303
    assert client.get(fresh).status_code == 200  # none of those attempts used it up
    assert client.get(link.rsplit("/", 1)[0] + "/not-a-token").status_code == 404


def test_an_expired_export_link_is_gone(client, app, db, make_user, login, monkeypatch):
    user = make_user()
    login(user)
    link = export_via_web(client).headers["location"]
    monkeypatch.setattr(gdpr, "EXPORT_TOKEN_MINUTES", -1)
    assert client.get(link).status_code == 410


def test_export_and_deletion_keep_the_ballot_secret_and_counted(client, app, db, make_user, login):
    """The export says in which vote a ballot is linked, never what it says; deleting the account deletes
    the voter link, the ballot stays counted and the tally is unchanged."""
    mount_voting(app)
    process = make_process(db)
    ids = project_ids(db, process)
    voter, others = make_user(), [make_user() for _ in range(3)]
    cast(db, app, process, voter, [ids[3], ids[4]])
    for n, o in enumerate(others):
        cast(db, app, process, o, [ids[n]])
    login(voter)
    data = client.get(export_via_web(client).headers["location"]).json()
    assert data["participation_in_votes"]["votes"] == [
        {"process_id": process.id, "process": "Bürgerbudget Test", "ballot": "city"}
    ]
    assert (
        "secret" in data["participation_in_votes"]["about"]
        or "geheim" in data["participation_in_votes"]["about"]
    )
    text = json.dumps(data)
    for ballot in query(db, Ballot, Ballot.process_id == process.id):
        assert ballot.ballot_uid not in text and ballot.selection not in text
    assert "voter_hash" not in text

    ballots_before = sorted((b.ballot_uid, b.selection) for b in query(db, Ballot))
    response = client.post_form("/account/delete", {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 303
    assert sorted((b.ballot_uid, b.selection) for b in query(db, Ballot)) == ballots_before
    assert len(query(db, VoterLink, VoterLink.process_id == process.id)) == 3

    close(db, process)
    voting_lifecycle.run_tally(db.engine, process_id=process.id)
    (run,) = query(db, TallyRun, TallyRun.process_id == process.id)
    result = json.loads(run.result)
    assert run.ballots == 4
    assert ids[3] in result["selected"] or any(
        p["id"] == ids[3] and p.get("score") == 1 for p in result.get("projects", [])
    )


def _delete(client, login, user) -> None:
    login(user)
    response = client.post_form("/account/delete", {"password": PASSWORD, "confirm": "on"})
    assert response.status_code == 303


def test_deleting_keeps_contributions_anonymised_by_default(client, app, db, make_user, login):
    user, other = make_user(name="Erika Muster"), make_user()
    ids = contribute(db, app, user, other)
    _delete(client, login, user)
    (row,) = query(db, User, User.id == user.id)
    assert row.deleted_at and row.email is None and row.password_hash is None and row.display_name == "—"
    (proposal,) = query(db, Proposal, Proposal.id == ids["published"])
    assert proposal.title == "Fahrradbügel am Laurentiusplatz" and proposal.author_id == user.id
    (comment,) = query(db, Comment, Comment.id == ids["comment"])
    assert comment.deleted_at is None and comment.body_md == "Gute Idee, Bänke!"
    assert query(db, Support, Support.user_id == user.id)  # still counted
    assert not query(db, Follow, Follow.user_id == user.id)  # personal settings go
    page = client.get(f"/proposals/{ids['published']}")
    assert page.status_code == 200 and "Erika Muster" not in page.text


@pytest.fixture
def remove_mode(settings_overrides):
    settings_overrides["deleted_content"] = "remove"


def test_deleting_with_remove_empties_proposals_and_leaves_comment_placeholders(
    remove_mode, client, app, db, make_user, login
):
    user, other = make_user(name="Erika Muster"), make_user()
    ids = contribute(db, app, user, other)
    (before,) = query(db, Proposal, Proposal.id == ids["other"])
    _delete(client, login, user)
    assert not query(db, Proposal, Proposal.id == ids["draft"])
    (stub,) = query(db, Proposal, Proposal.id == ids["published"])
    assert "Laurentius" not in stub.title + stub.summary + stub.body_md + stub.address
    assert stub.status == "withdrawn" and stub.lat is None
    (comment,) = query(db, Comment, Comment.id == ids["comment"])
    assert comment.deleted_at is not None and comment.body_md == "" and comment.body_html == ""
    (reply,) = query(db, Comment, Comment.id == ids["reply"])
    assert reply.deleted_at is None and reply.parent_id == comment.id  # the thread holds together
    (after,) = query(db, Proposal, Proposal.id == ids["other"])
    assert after.comment_count == before.comment_count - 1
    assert after.support_count == before.support_count == 1
    with new_session(db.engine) as s:
        assert "Laurentius" not in json.dumps(
            [list(r) for r in s.execute(select(Proposal.title, Proposal.body_md))], ensure_ascii=False
        )
    page = client.get(f"/proposals/{ids['other']}")
    assert page.status_code == 200 and "Gute Idee" not in page.text and "Danke für die Antwort" in page.text


def test_deleted_content_setting_is_validated():
    assert Settings(deleted_content="remove").validate().deleted_content == "remove"
    with pytest.raises(SettingsError, match="DELETED_CONTENT"):
        Settings(deleted_content="purge").validate()


def test_record_of_processing_activities_for_staff(client, app, db, make_user, login):
    resident = make_user()
    login(resident)
    assert client.get("/admin/processing").status_code == 403
    client.post_form("/logout")
    staff = make_user(Role.STAFF)
    login(staff)
    page = client.get("/admin/processing")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    settings = app.state.settings
    assert page.text.count('class="card processing-activity"') == len(gdpr_records_keys())
    assert "Art. 6(1)(e)" in page.text or "Art. 6 Abs. 1" in page.text
    hours = f"{settings.session_idle_minutes / 60:g}"
    assert re.search(rf"\b{re.escape(hours)}\b", page.text)
    assert f"{settings.reset_token_minutes}" in page.text


def gdpr_records_keys() -> list[str]:
    from app import gdpr_records

    return [a.key for a in gdpr_records.activities(Settings())]


def test_export_finds_every_table_that_refers_to_accounts():
    """New tables with a foreign key to user.id (sign-in identities, second factor, ...) are exported
    without code changes; secret columns never are."""
    tables = {t.name for t, _c in gdpr.user_references()}
    assert {"proposal", "comment", "support", "follow", "notification", "moderation_flag"} <= tables
    assert "user_session" not in tables and "user" not in tables
    assert gdpr._secret("user", "password_hash") and gdpr._secret("voter_link", "voter_hash")
    assert gdpr._secret("anything", "totp_secret") and gdpr._secret("moderation_decision", "note")
    assert not gdpr._secret("proposal", "title")
