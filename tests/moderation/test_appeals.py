"""Statements of reasons (Art. 17) by e-mail and in-app in the author's language, and appeals (Art. 20):
once per decision, decided by a different moderator, final."""

from __future__ import annotations

from app.models import User
from moderation.models import Appeal, ModerationDecision
from tests.conftest import query
from tests.moderation.conftest import decide, ground_id, hide_item
from tests.proposals.factories import make_comment, make_proposal, reload


def _hidden_comment(db, client, make_user, login, *, locale="de"):
    author = make_user(locale=locale)
    comment = make_comment(db, make_proposal(db, make_user()), author, "Ihr seid alle Idioten")
    mod = make_user("moderator")
    login(mod)
    r = hide_item(client, db, "comment", comment.id, statement="Der Kommentar beleidigt andere Teilnehmende.")
    assert r.status_code == 303, r.text
    client.post_form("/logout")
    [d] = query(db, ModerationDecision)
    return author, comment, mod, d


def test_statement_of_reasons_mailed_and_shown_in_german(db, client, make_user, login, mailbox):
    """The author gets the statement by mail and in-app (German), naming decision, ground, reasons, appeal link."""
    author, _comment, _mod, d = _hidden_comment(db, client, make_user, login)
    [mail] = mailbox.to(author.email)
    body = mailbox.body(mail)
    assert "§ 185 StGB Beleidigung" in body and "Der Kommentar beleidigt andere Teilnehmende." in body
    assert f"/moderation/decisions/{d.id}/appeal" in body
    login(author)
    page = client.get("/moderation/notices").text
    assert "§ 185 StGB Beleidigung" in page and "Der Kommentar beleidigt andere Teilnehmende." in page
    assert f"/moderation/decisions/{d.id}/appeal" in page


def test_statement_in_english_for_english_authors(db, client, make_user, login, mailbox):
    """An English-speaking author gets the English ground title, in mail and in-app."""
    author, _c, _m, _d = _hidden_comment(db, client, make_user, login, locale="en")
    body = mailbox.body(mailbox.to(author.email)[0])
    assert "Section 185 German Criminal Code (insult)" in body and "You can appeal this decision once" in body
    login(author)
    assert "Section 185 German Criminal Code (insult)" in client.get("/moderation/notices").text


def test_appeal_once_decided_by_another_moderator(db, client, make_user, login, mailbox):
    """Art. 20: the author appeals once; the deciding moderator cannot decide it (403); another moderator
    reverses it (final, stated to the author) and the comment is visible again."""
    author, comment, mod, d = _hidden_comment(db, client, make_user, login)
    login(author)
    r = client.post_form(f"/moderation/decisions/{d.id}/appeal", {"text": "Das war Satire."})
    assert r.status_code == 303
    r = client.post_form(f"/moderation/decisions/{d.id}/appeal", {"text": "Nochmal"})
    assert r.status_code == 400
    [appeal] = query(db, Appeal)
    assert appeal.text == "Das war Satire."
    client.post_form("/logout")

    login(mod)
    assert client.get(f"/moderation/appeals/{appeal.id}").status_code == 403
    r = client.post_form(f"/moderation/appeals/{appeal.id}", {"outcome": "reverse", "statement": "x"})
    assert r.status_code == 403
    client.post_form("/logout")

    second = make_user("moderator")
    login(second)
    assert "Das war Satire." in client.get(f"/moderation/appeals/{appeal.id}").text
    r = client.post_form(
        f"/moderation/appeals/{appeal.id}", {"outcome": "reverse", "statement": "Erkennbar Satire."}
    )
    assert r.status_code == 303
    final = query(db, ModerationDecision, ModerationDecision.appeal_of_id == d.id)[0]
    assert final.action == "restore" and final.moderator_id == second.id
    assert reload(db, Appeal, appeal.id).decided_by_decision_id == final.id
    assert client.get(f"/comments/{comment.id}").status_code in (200, 303)  # back in the thread
    r = client.post_form(f"/moderation/appeals/{appeal.id}", {"outcome": "confirm", "statement": "again"})
    assert r.status_code == 400
    assert "Erkennbar Satire." in mailbox.body(mailbox.to(author.email)[-1])
    client.post_form("/logout")
    login(author)
    page = client.get("/moderation/notices").text
    assert "Erkennbar Satire." in page
    # the final decision cannot be appealed
    assert client.get(f"/moderation/decisions/{final.id}/appeal").status_code == 200
    assert client.post_form(f"/moderation/decisions/{final.id}/appeal", {"text": "x"}).status_code == 400


def test_only_the_affected_author_can_appeal(db, client, make_user, login):
    """Someone else (and anonymous visitors) cannot appeal a decision: 403 / login."""
    _author, _c, _m, d = _hidden_comment(db, client, make_user, login)
    assert client.get(f"/moderation/decisions/{d.id}/appeal").status_code == 303
    login(make_user())
    assert client.post_form(f"/moderation/decisions/{d.id}/appeal", {"text": "x"}).status_code == 403
    assert query(db, Appeal) == []


def test_confirmed_appeal_keeps_decision(db, client, make_user, login):
    """Confirming keeps the item hidden."""
    author, comment, _mod, d = _hidden_comment(db, client, make_user, login)
    login(author)
    client.post_form(f"/moderation/decisions/{d.id}/appeal", {"text": "Bitte prüfen"})
    client.post_form("/logout")
    login(make_user("moderator"))
    [appeal] = query(db, Appeal)
    r = client.post_form(
        f"/moderation/appeals/{appeal.id}", {"outcome": "confirm", "statement": "Bleibt verborgen."}
    )
    assert r.status_code == 303
    assert client.get(f"/comments/{comment.id}").status_code == 404


def test_reversed_suspension_is_lifted(db, client, make_user, login):
    """Reversing a suspension lifts it."""
    author = make_user()
    comment = make_comment(db, make_proposal(db, make_user()), author)
    login(make_user("moderator"))
    decide(client, "comment", comment.id, action="suspend", ground=ground_id(db), statement="x", days=3)
    assert reload(db, User, author.id).is_suspended()
    [d] = query(db, ModerationDecision)
    from app.database import new_session
    from moderation import services

    with new_session(db.engine) as s:
        services.appeal(s, user=s.get(User, author.id), decision_id=d.id, text="Bitte")
        s.commit()
    client.post_form("/logout")
    login(make_user("moderator"))
    [appeal] = query(db, Appeal)
    assert (
        client.post_form(
            f"/moderation/appeals/{appeal.id}", {"outcome": "reverse", "statement": "ok"}
        ).status_code
        == 303
    )
    assert not reload(db, User, author.id).is_suspended()
