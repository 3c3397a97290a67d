"""Creating, previewing, editing and the lifecycle of proposals, with bad input for every field and the
XSS corpus through every text field. SECURITY.md rows are named in the docstrings."""

from __future__ import annotations

import re

import pytest

from proposals import notifications
from proposals.models import Follow, Proposal, ProposalStatus, ProposalStatusChange, ProposalVersion
from tests.conftest import query
from tests.proposals.proposal_helpers import BODY, district, form_data, get, make_proposal

XSS = [
    "<script>alert(1)</script>",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "<iframe src=javascript:alert(1)></iframe>",
    '<a href="javascript:alert(1)">x</a>',
]


def _new(client, db, **overrides):
    return client.post_form("/proposals/new", {**form_data(db), "action": "publish", **overrides})


def _only(db) -> Proposal:
    rows = query(db, Proposal)
    assert len(rows) == 1
    return rows[0]


# --- create ------------------------------------------------------------------------------------------------


def test_create_and_publish(client, db, make_user, login):
    """A resident publishes a proposal with every optional field; the page shows it, the author follows it,
    the status history has the publish step, and the body is stored as sanitised HTML."""
    author = make_user(name="Petra Plan")
    login(author)
    form = client.get("/proposals/new")
    assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
    response = _new(
        client,
        db,
        district=district(db, 2).id,
        address="Nordpark, Am Teich",
        lat="51,2562",
        lon="7.1508",
        cost="1.234,56",
    )
    assert response.status_code == 303
    p = _only(db)
    assert response.headers["location"] == f"/proposals/{p.id}"
    assert p.status == ProposalStatus.PUBLISHED and p.published_at is not None
    assert (p.author_id, p.district_id, p.address) == (author.id, district(db, 2).id, "Nordpark, Am Teich")
    assert (p.lat, p.lon, p.cost_cents) == (51.2562, 7.1508, 123456)
    assert (
        p.body_md == BODY
        and "<strong>Beleuchtung</strong>" in p.body_html
        and "<li>Lampe 1</li>" in p.body_html
    )
    assert [(f.user_id) for f in query(db, Follow, Follow.proposal_id == p.id)] == [author.id]
    changes = query(db, ProposalStatusChange, ProposalStatusChange.proposal_id == p.id)
    assert [(c.from_status, c.to_status, c.actor_id) for c in changes] == [("draft", "published", author.id)]
    page = client.get(f"/proposals/{p.id}").text
    assert "Mehr Licht im Nordpark" in page and "Petra Plan" in page
    assert "1.234,56" in page and "Nordpark, Am Teich" in page
    assert "https://www.openstreetmap.org/?mlat=51.25620&amp;mlon=7.15080#map=17/51.25620/7.15080" in page
    assert "<script" not in page.split("</head>")[1].replace('<script src="/static', "")


def test_save_as_draft_then_publish(client, db, make_user, login):
    """A draft is saved, visible only to its author, and published later with its own button."""
    author = make_user()
    login(author)
    assert _new(client, db, action="draft").status_code == 303
    p = _only(db)
    assert p.status == ProposalStatus.DRAFT and p.published_at is None
    page = client.get(f"/proposals/{p.id}")
    assert page.status_code == 200 and "Entwurf" in page.text
    assert client.post_form(f"/proposals/{p.id}/publish").status_code == 303
    p = get(db, p.id)
    assert p.status == ProposalStatus.PUBLISHED and p.published_at is not None
    assert client.post_form(f"/proposals/{p.id}/publish").status_code == 403  # not a draft any more


def test_unknown_action_saves_a_draft(client, db, make_user, login):
    """The action comes from an allowlist: anything else saves a draft, never publishes."""
    login(make_user())
    assert _new(client, db, action="accepted").status_code == 303
    assert _only(db).status == ProposalStatus.DRAFT


def test_anonymous_cannot_create(client, db):
    """Creating needs an account: the form and the POST redirect to the login page, nothing is stored."""
    assert client.get("/proposals/new").headers["location"] == "/login?next=/proposals/new"
    response = _new(client, db)
    assert response.status_code == 303 and response.headers["location"].startswith("/login")
    assert query(db, Proposal) == []


BAD_INPUT = [
    ("title", "", "title"),
    ("title", "Zu kurz", "title"),
    ("title", "x" * 141, "title"),
    ("title", "Zeile eins\nZeile zwei", "title"),
    ("summary", "", "summary"),
    ("summary", "x" * 501, "summary"),
    ("body", "", "body"),
    ("body", "x" * 20_001, "body"),
    ("body", "null\x00byte", "body"),
    ("theme", "", "theme"),
    ("theme", "999999", "theme"),
    ("theme", "gesellschaft-engagement", "theme"),
    ("district", "999999", "district"),
    ("district", "abc", "district"),
    ("address", "x" * 201, "address"),
    ("lat", "abc", "lat"),
    ("lat", "1e3", "lat"),
    ("lat", "nan", "lat"),
    ("cost", "abc", "cost"),
    ("cost", "-5", "cost"),
    ("cost", "12,345,67", "cost"),
    ("cost", "1.000.000.001", "cost"),
    ("cost", "99999999999999999999", "cost"),
]


@pytest.mark.parametrize(("name", "value", "field"), BAD_INPUT)
def test_bad_input_is_refused_next_to_the_field(client, db, make_user, login, name, value, field):
    """ASVS V2.2.1: every field validated server-side; 400 with the message next to the field (id e-<name>,
    aria-invalid on the input); nothing is written, the entered text is kept."""
    login(make_user())
    data = {name: value}
    if name in ("lat", "lon"):
        data.update(lat=value, lon="7.15")
    response = _new(client, db, **data)
    assert response.status_code == 400
    assert f'id="e-{field}"' in response.text
    assert re.search(rf'id="f-{field}"[^>]*aria-invalid="true"', response.text, re.S)
    assert query(db, Proposal) == []
    if name == "title" and value:
        assert "Zu kurz" in response.text or "xxxxx" in response.text or "Zeile eins" in response.text


@pytest.mark.parametrize(
    ("lat", "lon", "field"),
    [
        ("51.25", "", "lon"),
        ("", "7.15", "lat"),
        ("52.52", "7.15", "lat"),
        ("51.25", "13.40", "lon"),
        ("-51.25", "-7.15", "lat"),
    ],
)
def test_map_point_both_or_neither_and_inside_the_city(client, db, make_user, login, lat, lon, field):
    """Latitude and longitude come together and must lie within settings.bbox (MAP_BBOX)."""
    login(make_user())
    response = _new(client, db, lat=lat, lon=lon)
    assert response.status_code == 400 and f'id="e-{field}"' in response.text
    assert query(db, Proposal) == []


@pytest.mark.parametrize(
    ("typed", "cents"),
    [
        ("1.234,56", 123456),
        ("1234.56", 123456),
        ("1234", 123400),
        ("1.234", 123400),
        ("€ 99,5", 9950),
        ("", None),
    ],
)
def test_cost_formats(client, db, make_user, login, typed, cents):
    """Costs typed the German or the English way are stored as integer cents."""
    login(make_user())
    assert _new(client, db, cost=typed).status_code == 303
    assert _only(db).cost_cents == cents


def test_wrong_types_in_the_form(client, db, make_user, login):
    """A file where text is expected, and repeated fields, give field errors, not a crash."""
    login(make_user())
    token = client.csrf()
    response = client.post(
        "/proposals/new",
        data={**form_data(db), "csrf_token": token, "action": "publish"},
        files={"title": ("t.txt", b"Mehr Licht im Nordpark", "text/plain")},
    )
    assert response.status_code == 400 and 'id="e-title"' in response.text
    assert query(db, Proposal) == []


@pytest.mark.parametrize("settings_overrides", [{"rate_limit_enabled": True, "rate_limit_post": "2/3600"}])
def test_posting_is_rate_limited(client, db, make_user, login):
    """ASVS V2.4.1: creating proposals counts against the "post" limit per user; over it → 429, nothing
    written."""
    login(make_user())
    assert _new(client, db).status_code == 303
    assert _new(client, db).status_code == 303
    response = _new(client, db)
    assert response.status_code == 429 and "Retry-After" in response.headers
    assert len(query(db, Proposal)) == 2


# --- preview -----------------------------------------------------------------------------------------------


def test_preview_with_htmx_returns_the_partial(client, db, make_user, login):
    """The htmx preview answers with the partial only: the body rendered and sanitised, nothing stored."""
    login(make_user())
    token = client.csrf()
    response = client.post(
        "/proposals/preview",
        data={**form_data(db, body="## Idee\n\n*kursiv* <script>alert(1)</script> [x](javascript:alert(1))")},
        headers={"HX-Request": "true", "X-CSRF-Token": token},
    )
    assert response.status_code == 200
    assert "<html" not in response.text and 'id="preview-h"' in response.text
    assert "<h3>Idee</h3>" in response.text and "<em>kursiv</em>" in response.text
    assert "<script>alert" not in response.text and 'href="javascript:' not in response.text
    assert query(db, Proposal) == []


def test_preview_without_javascript_rerenders_the_form(client, db, make_user, login):
    """Without JS the same button submits the form (action=preview): the whole page comes back with the
    preview and the entered values; nothing is stored, even with invalid fields."""
    login(make_user())
    response = _new(client, db, action="preview", title="Kurz", body="**fett**")
    assert response.status_code == 200
    assert "<html" in response.text and 'id="preview-h"' in response.text
    assert "<strong>fett</strong>" in response.text and 'value="Kurz"' in response.text
    assert query(db, Proposal) == []


def test_preview_needs_an_account(client, db):
    response = client.post_form("/proposals/preview", form_data(db))
    assert response.status_code == 303 and response.headers["location"].startswith("/login")


# --- edit and versions ---------------------------------------------------------------------------------------


def test_free_edit_before_anyone_engaged(client, db, make_user, login):
    """While nobody supported or commented, the author edits without a version being kept."""
    author = make_user()
    p = make_proposal(db, author)
    login(author)
    edit = client.get(f"/proposals/{p.id}/edit")
    assert edit.status_code == 200 and "Mehr Licht im Nordpark" in edit.text
    response = client.post_form(f"/proposals/{p.id}/edit", form_data(db, title="Noch mehr Licht im Nordpark"))
    assert response.status_code == 303
    p = get(db, p.id)
    assert p.title == "Noch mehr Licht im Nordpark" and p.version == 1
    assert query(db, ProposalVersion) == []
    assert "bearbeitet" not in client.get(f"/proposals/{p.id}").text


def test_edit_after_support_keeps_a_version(client, db, make_user, login):
    """After a support, each edit stores the previous text as a version, increments the version, and the
    page shows the "bearbeitet" marker and the earlier text."""
    author, fan = make_user(), make_user()
    p = make_proposal(db, author, body="Alter Text mit **Fett**")
    login(fan)
    client.post_form(f"/proposals/{p.id}/support")
    login(author)
    assert client.post_form(f"/proposals/{p.id}/edit", form_data(db, body="Neuer Text")).status_code == 303
    p = get(db, p.id)
    assert p.version == 2 and p.body_md == "Neuer Text"
    [v] = query(db, ProposalVersion, ProposalVersion.proposal_id == p.id)
    assert (v.version, v.body_md, v.title) == (1, "Alter Text mit **Fett**", "Mehr Licht im Nordpark")
    page = client.get(f"/proposals/{p.id}").text
    assert (
        "bearbeitet" in page
        and "Frühere Fassungen" in page
        and "Alter Text mit <strong>Fett</strong>" in page
    )
    # an unchanged save keeps no further version
    client.post_form(f"/proposals/{p.id}/edit", form_data(db, body="Neuer Text"))
    assert get(db, p.id).version == 2


@pytest.mark.parametrize("status", ["under_review", "accepted", "rejected", "implemented", "withdrawn"])
def test_no_edit_after_publication_phase(client, db, make_user, login, status):
    """Once under review or decided, the author can no longer edit: 403 on GET and POST."""
    author = make_user()
    p = make_proposal(db, author, status=status, staff=make_user("staff"))
    login(author)
    assert client.get(f"/proposals/{p.id}/edit").status_code == 403
    assert (
        client.post_form(f"/proposals/{p.id}/edit", form_data(db, title="Ganz anderer Titel")).status_code
        == 403
    )
    assert get(db, p.id).title == "Mehr Licht im Nordpark"


def test_edit_with_bad_input(client, db, make_user, login):
    """Edits are validated like new proposals: 400, nothing changed."""
    author = make_user()
    p = make_proposal(db, author)
    login(author)
    response = client.post_form(f"/proposals/{p.id}/edit", form_data(db, title="kurz", cost="-1"))
    assert response.status_code == 400 and 'id="e-title"' in response.text and 'id="e-cost"' in response.text
    assert get(db, p.id).title == "Mehr Licht im Nordpark"


def test_publish_from_the_edit_form(client, db, make_user, login):
    author = make_user()
    p = make_proposal(db, author, status="draft")
    login(author)
    response = client.post_form(f"/proposals/{p.id}/edit", {**form_data(db), "action": "publish"})
    assert response.status_code == 303 and get(db, p.id).status == ProposalStatus.PUBLISHED


# --- lifecycle ---------------------------------------------------------------------------------------------


@pytest.fixture
def status_spy(monkeypatch):
    calls = []
    real = notifications.notify_followers

    def spy(db, **kwargs):
        calls.append((kwargs["proposal"].id, kwargs["kind"], kwargs["actor"].id, kwargs["proposal"].status))
        return real(db, **kwargs)

    monkeypatch.setattr(notifications, "notify_followers", spy)
    return calls


def test_withdraw_by_author(client, db, make_user, login, status_spy):
    """The author withdraws with an optional public reason: history row, timestamp, followers notified."""
    author = make_user()
    p = make_proposal(db, author)
    status_spy.clear()
    login(author)
    assert client.get(f"/proposals/{p.id}/withdraw").status_code == 200
    response = client.post_form(f"/proposals/{p.id}/withdraw", {"reason": "Hat sich erledigt."})
    assert response.status_code == 303
    p = get(db, p.id)
    assert p.status == ProposalStatus.WITHDRAWN and p.withdrawn_at is not None and p.comments_locked_at
    last = query(db, ProposalStatusChange, ProposalStatusChange.to_status == "withdrawn")[0]
    assert (last.from_status, last.reason, last.actor_id) == ("published", "Hat sich erledigt.", author.id)
    assert status_spy == [(p.id, "status", author.id, "withdrawn")]
    page = client.get(f"/proposals/{p.id}").text
    assert "Hat sich erledigt." in page and "Zurückgezogen" in page
    assert client.post_form(f"/proposals/{p.id}/withdraw").status_code == 403  # only once


def test_staff_lifecycle_with_reasons(client, db, make_user, login, status_spy):
    """Staff move published → under review → accepted → implemented; each step is a history row with the
    public reason and its timestamp; followers are notified every time."""
    author, staff = make_user(), make_user("staff")
    p = make_proposal(db, author)
    status_spy.clear()
    login(staff)
    assert client.get(f"/proposals/{p.id}/status").status_code == 200
    for to, reason in [
        ("under_review", "Wird geprüft."),
        ("accepted", "Mittel bereitgestellt."),
        ("implemented", ""),
    ]:
        response = client.post_form(f"/proposals/{p.id}/status", {"to": to, "reason": reason})
        assert response.status_code == 303, response.text
    p = get(db, p.id)
    assert p.status == ProposalStatus.IMPLEMENTED and p.decided_at and p.implemented_at
    rows = query(db, ProposalStatusChange, ProposalStatusChange.proposal_id == p.id)
    assert [(r.from_status, r.to_status, r.reason) for r in sorted(rows, key=lambda r: r.id)] == [
        ("draft", "published", ""),
        ("published", "under_review", "Wird geprüft."),
        ("under_review", "accepted", "Mittel bereitgestellt."),
        ("accepted", "implemented", ""),
    ]
    assert [c[1:] for c in status_spy] == [
        ("status", staff.id, "under_review"),
        ("status", staff.id, "accepted"),
        ("status", staff.id, "implemented"),
    ]
    page = client.get(f"/proposals/{p.id}").text.split('<main id="main"')[1]
    assert "Mittel bereitgestellt." in page and "Stadtverwaltung" in page and staff.display_name not in page


def test_rejection_needs_a_public_reason(client, db, make_user, login):
    """A rejection without a reason is refused next to the field; with one it is stored and shown."""
    author, staff = make_user(), make_user("staff")
    p = make_proposal(db, author, status="under_review", staff=staff)
    login(staff)
    response = client.post_form(f"/proposals/{p.id}/status", {"to": "rejected", "reason": "  "})
    assert response.status_code == 400 and 'id="e-reason-' in response.text
    assert get(db, p.id).status == ProposalStatus.UNDER_REVIEW
    response = client.post_form(
        f"/proposals/{p.id}/status", {"to": "rejected", "reason": "Nicht finanzierbar."}
    )
    assert response.status_code == 303
    p = get(db, p.id)
    assert p.status == ProposalStatus.REJECTED and p.status_reason == "Nicht finanzierbar." and p.decided_at


@pytest.mark.parametrize(
    ("start", "to"), [("published", "accepted"), ("published", "withdrawn"), ("published", "x")]
)
def test_staff_cannot_skip_steps(client, db, make_user, login, start, to):
    """Only the transitions in the lifecycle table are possible; others are a field error."""
    staff = make_user("staff")
    p = make_proposal(db, make_user(), status=start, staff=staff)
    login(staff)
    response = client.post_form(f"/proposals/{p.id}/status", {"to": to, "reason": "x"})
    assert response.status_code == 400 and get(db, p.id).status == start


def test_status_redirect_only_to_relative_paths(client, db, make_user, login):
    """consul #1630 / ASVS V3.7.2: next= accepts only relative paths."""
    staff = make_user("staff")
    p = make_proposal(db, make_user())
    login(staff)
    response = client.post_form(
        f"/proposals/{p.id}/status", {"to": "under_review", "reason": "", "next": "https://evil.example/"}
    )
    assert response.headers["location"] == f"/proposals/{p.id}"


def test_review_queue(client, db, make_user, login, app):
    """Staff see proposals that reached the threshold or are under review, with a status form each."""
    staff = make_user("staff")
    waiting = make_proposal(db, make_user(), title="Schon in der Prüfung", status="under_review", staff=staff)
    quiet = make_proposal(db, make_user(), title="Noch ohne Unterstützung")
    login(staff)
    page = client.get("/proposals/review")
    assert page.status_code == 200
    assert "Schon in der Prüfung" in page.text and "Noch ohne Unterstützung" not in page.text
    assert f'action="/proposals/{waiting.id}/status"' in page.text
    assert f'action="/proposals/{quiet.id}/status"' not in page.text


# --- visibility and XSS --------------------------------------------------------------------------------------


def test_drafts_are_404_for_others(client, db, make_user, login):
    """CVE-2024-27090: a draft is visible to its author and moderators only; others get 404."""
    author = make_user()
    p = make_proposal(db, author, status="draft")
    assert client.get(f"/proposals/{p.id}").status_code == 404
    login(make_user())
    assert client.get(f"/proposals/{p.id}").status_code == 404
    login(make_user("staff"))
    assert client.get(f"/proposals/{p.id}").status_code == 404
    login(make_user("moderator"))
    assert client.get(f"/proposals/{p.id}").status_code == 200
    assert client.get("/proposals/999999").status_code == 404


@pytest.mark.parametrize("payload", XSS)
def test_xss_corpus_never_rendered_as_markup(client, db, make_user, login, payload):
    """CVE-2023-32693, CVE-2024-39910, ASVS V1.2.1: payloads in title, summary, body and address appear as
    text on the proposal page, in the list, in the preview and on the home page, never as markup."""
    author = make_user()
    login(author)
    title = ("Titel " + payload)[:140]
    response = _new(
        client,
        db,
        title=title,
        summary=payload,
        body=payload + "\n\n[klick](javascript:alert(1))",
        address=payload[:200],
    )
    assert response.status_code == 303
    p = _only(db)
    pages = [
        client.get(f"/proposals/{p.id}").text,
        client.get("/proposals").text,
        client.get("/").text,
        client.get(f"/proposals/{p.id}/edit").text,
        _new(client, db, title=title, summary=payload, body=payload, action="preview").text,
    ]
    for page in pages:
        main = page.split('<main id="main"', 1)[1]
        for marker in (
            r"<script>alert",
            r"<img\b",
            r"<svg\b",
            r"<iframe\b",
            r"<a\s[^>]*href=[\"']?javascript:",
        ):
            assert not re.search(marker, main), marker
    assert "&lt;" in pages[0]
