"""Public profiles, hidden comments kept as placeholders, comment counts that ignore hidden comments, and the
visible note of a moderation edit on the proposal page."""

from __future__ import annotations

from moderation import visibility as moderation_visibility
from proposals.models import Proposal
from tests.moderation.conftest import decide, ground_id, hide_item
from tests.proposals.factories import make_comment, make_proposal, reload

moderation_visibility.install()


def test_hidden_comment_with_replies_stays_as_placeholder_and_leaves_the_count(db, client, make_user, login):
    """A hidden comment's text never reaches the page; its shown replies keep their place in the thread, and
    the proposal's comment count counts shown comments only (hide, then restore)."""
    author = make_user(name="Autorin")
    proposal = make_proposal(db, author)
    rude = make_comment(db, proposal, make_user(), "Geheimer Beleidigungstext")
    reply = make_comment(db, proposal, make_user(), "Bitte sachlich bleiben", parent=rude)
    lone = make_comment(db, proposal, make_user(), "Einsamer Spamtext")
    assert reload(db, Proposal, proposal.id).comment_count == 3
    login(make_user("moderator"))
    assert hide_item(client, db, "comment", rude.id).status_code == 303
    assert hide_item(client, db, "comment", lone.id).status_code == 303
    assert reload(db, Proposal, proposal.id).comment_count == 1
    client.cookies.clear()
    page = client.get(f"/proposals/{proposal.id}").text
    assert "Geheimer Beleidigungstext" not in page and "Einsamer Spamtext" not in page
    assert "Comment hidden by moderation" in page or "Kommentar von der Moderation ausgeblendet" in page
    assert page.count("comment-hidden") == 1  # the lone hidden comment has no replies: no placeholder
    assert "Bitte sachlich bleiben" in page and f'id="comment-article-{reply.id}"' in page
    assert client.get(f"/comments/{rude.id}/reply").status_code == 404
    login(make_user("moderator"))
    assert decide(client, "comment", rude.id, action="restore").status_code == 303
    assert reload(db, Proposal, proposal.id).comment_count == 2


def test_deleting_a_hidden_comment_does_not_lower_the_count_twice(db, client, make_user, login):
    author = make_user()
    proposal = make_proposal(db, make_user())
    comment = make_comment(db, proposal, author, "Wird ausgeblendet")
    make_comment(db, proposal, make_user(), "Bleibt")
    login(make_user("moderator"))
    hide_item(client, db, "comment", comment.id)
    assert reload(db, Proposal, proposal.id).comment_count == 1
    from app.database import new_session
    from proposals import comments

    with new_session(db.engine) as s:
        from proposals.models import Comment

        row = s.get(Comment, comment.id)
        comments.delete_comment(s, comment=row, actor=s.get(type(author), author.id))
        s.commit()
    assert reload(db, Proposal, proposal.id).comment_count == 1


def test_moderation_edit_note_is_shown_on_the_proposal_page(db, client, make_user, login):
    proposal = make_proposal(db, make_user())
    login(make_user("moderator"))
    r = decide(
        client,
        "proposal",
        proposal.id,
        action="edit",
        ground=ground_id(db, "rules-topic"),
        statement="Titel präzisiert",
        title="Neue Bänke im Stadtpark",
        note="Titel von der Moderation <b>präzisiert</b>",
    )
    assert r.status_code == 303, r.text
    client.cookies.clear()
    page = client.get(f"/proposals/{proposal.id}").text
    assert "Titel von der Moderation &lt;b&gt;präzisiert&lt;/b&gt;" in page
    assert 'id="notes-h"' in page


def test_public_profile_lists_public_proposals_only(db, client, make_user, login):
    """The profile shows the display name, counts and public proposals; never the e-mail; hidden proposals
    and comments are not counted; a deleted account has no profile (404); the report link is there."""
    person = make_user(name="Hanna <Beispiel>")
    shown = make_proposal(db, person, title="Mehr Bäume an der Wupper")
    hidden = make_proposal(db, person, title="Versteckter Vorschlag hier")
    make_proposal(db, person, title="Entwurf bleibt privat", status="draft")
    make_comment(db, shown, person, "Ich ergänze")
    login(make_user("moderator"))
    hide_item(client, db, "proposal", hidden.id, ground="rules-respect", statement="Regelverstoß")
    client.cookies.clear()
    r = client.get(f"/users/{person.id}")
    assert r.status_code == 200
    assert "Hanna &lt;Beispiel&gt;" in r.text and person.email not in r.text
    assert "Mehr Bäume an der Wupper" in r.text
    assert "Versteckter Vorschlag" not in r.text and "Entwurf bleibt privat" not in r.text
    assert f'href="/report/profile/{person.id}"' in r.text
    assert f'href="/users/{person.id}"' in client.get(f"/proposals/{shown.id}").text
    assert client.get("/users/999999").status_code == 404
    deleted = make_user(name="Weg")
    from sqlalchemy import update

    from app.database import new_session, utcnow
    from app.models import User

    with new_session(db.engine) as s:
        s.execute(update(User).where(User.id == deleted.id).values(deleted_at=utcnow()))
        s.commit()
    assert client.get(f"/users/{deleted.id}").status_code == 404
