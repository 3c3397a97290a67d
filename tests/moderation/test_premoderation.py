"""Pre-moderation per theme area and the word list: matching new content is held (a pending decision),
stays out of every listing, waits in the queue, and is published by a moderator's restore."""

from __future__ import annotations

from app.database import new_session
from moderation import premoderation
from moderation.models import ModerationDecision
from proposals.models import Comment, Proposal
from tests.conftest import query
from tests.moderation.conftest import decide
from tests.proposals.factories import make_comment, make_proposal


def _hold(db, item_type, model, item_id, text, theme_id):
    with new_session(db.engine) as s:
        item = s.get(model, item_id)
        decision = premoderation.hold_if_needed(
            s, item_type=item_type, item=item, text=text, theme_id=theme_id
        )
        s.commit()
        return decision


def test_admin_configures_word_list_and_themes(db, client, make_user, login):
    """The admin page stores the word list and the pre-moderated theme areas as data."""
    proposal = make_proposal(db, make_user())
    login(make_user("admin"))
    r = client.post_form(
        "/admin/moderation", {"words": "Casino\n  Kredit \n\nCasino", "premoderate": str(proposal.theme_id)}
    )
    assert r.status_code == 303
    with new_session(db.engine) as s:
        assert premoderation.word_list(s) == ["casino", "kredit"]
        assert premoderation.premoderated_themes(s) == {proposal.theme_id}
    page = client.get("/admin/moderation").text
    assert "Casino" in page and f'value="{proposal.theme_id}" checked' in page
    client.post_form("/admin/moderation", {"words": ""})
    with new_session(db.engine) as s:
        assert premoderation.word_list(s) == [] and premoderation.premoderated_themes(s) == set()


def test_word_list_holds_matching_comment_until_restored(db, client, make_user, login):
    """A comment with a listed word is held: invisible, in the queue; restore publishes it."""
    with new_session(db.engine) as s:
        premoderation.set_word_list(s, words="Casino")
        s.commit()
    proposal = make_proposal(db, make_user())
    ok = make_comment(db, proposal, make_user(), "Schöne Idee")
    bad = make_comment(db, proposal, make_user(), "Besucht mein CASINO!")
    assert _hold(db, "comment", Comment, ok.id, ok.body_md, proposal.theme_id) is None
    held = _hold(db, "comment", Comment, bad.id, bad.body_md, proposal.theme_id)
    assert held is not None and held.action == "hold" and held.moderator_id is None
    assert "CASINO" not in client.get(f"/proposals/{proposal.id}").text
    login(make_user("moderator"))
    queue = client.get("/moderation").text
    assert f"/moderation/items/comment/{bad.id}" in queue
    assert decide(client, "comment", bad.id, action="restore").status_code == 303
    assert "CASINO" in client.get(f"/proposals/{proposal.id}").text


def test_word_list_matches_whole_words_only(db):
    """ "Kasse" does not match "Kassel"; matching is case-insensitive."""
    assert premoderation.matching_words(["kasse"], "Ich fahre nach Kassel") == []
    assert premoderation.matching_words(["kasse"], "Die KASSE ist leer") == ["kasse"]


def test_premoderated_theme_holds_new_proposals(db, client, make_user):
    """In a pre-moderated theme area every new proposal waits for review."""
    proposal = make_proposal(db, make_user(), title="Wartet auf Prüfung")
    with new_session(db.engine) as s:
        premoderation.set_premoderated_themes(s, theme_ids={proposal.theme_id})
        s.commit()
    assert _hold(db, "proposal", Proposal, proposal.id, proposal.body_md, proposal.theme_id) is not None
    assert "Wartet auf Prüfung" not in client.get("/proposals").text
    assert len(query(db, ModerationDecision, ModerationDecision.action == "hold")) == 1


def test_event_handlers_hold_new_content(db, make_user):
    """The handlers for "proposal.published" / "comment.created" hold matching content in the caller's
    transaction (the core publishes these events once wired; see moderation/premoderation.py)."""
    proposal = make_proposal(db, make_user(), body="Günstiger Kredit hier")
    comment = make_comment(db, proposal, make_user(), "Nichts Besonderes")
    with new_session(db.engine) as s:
        premoderation.set_word_list(s, words="Kredit")
        premoderation.on_proposal_published(s, proposal_id=proposal.id)
        premoderation.on_comment_created(s, comment_id=comment.id)
        s.commit()
    held = query(db, ModerationDecision, ModerationDecision.action == "hold")
    assert [(d.item_type, d.item_id) for d in held] == [("proposal", proposal.id)]
