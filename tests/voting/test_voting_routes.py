"""The voting pages over HTTP: process page, the ballot with its htmx summary and its no-JavaScript
fallback, confirmation, casting, receipts, bad input (400, field errors, nothing written), and the staff
pages for the lifecycle steps and the tally status."""

from __future__ import annotations

import datetime as dt
import json
import re

import pytest

from app.database import new_session, utcnow
from app.models import Role, User
from tests.conftest import query
from tests.voting.test_ballots import (
    APPROVAL_PROJECTS,
    ballot_state,
    cast,
    close,
    district_id,
    log_entries,
    make_process,
    mount_voting,
    project_ids,
    reload,
    set_district,
    theme_id,
)
from voting import lifecycle
from voting.models import Ballot, Process, TallyRun

HX = {"HX-Request": "true"}


@pytest.fixture(autouse=True)
def _routes(app):
    mount_voting(app)


@pytest.fixture
def voter(make_user, login):
    user = make_user(email="rita@example.org", name="Rita Wählerin")
    login(user)
    return user


def test_process_page_shows_timeline_budget_and_projects(db, client):
    """Anyone can read a process: phases with dates, budgets, projects; unknown ids are 404."""
    now = utcnow()
    process = make_process(
        db,
        projects=[*APPROVAL_PROJECTS, ("Fahrradbügel Döppersberg", 30_000_00, "elberfeld", None)],
        district_budgets={"elberfeld": 50_000_00},
        ideas_starts_at=now - dt.timedelta(days=90),
        review_starts_at=now - dt.timedelta(days=30),
        now=now,
    )
    r = client.get(f"/processes/{process.id}")
    assert r.status_code == 200
    html = r.text
    assert "Bürgerbudget Test" in html and "Abstimmung läuft" in html
    assert "Stadtbäume" in html and "Zeitplan" in html
    assert 'aria-current="step"' in html
    assert "Anmelden, um abzustimmen" in html
    assert client.get("/processes/999999").status_code == 404
    listing = client.get("/processes")
    assert listing.status_code == 200 and f"/processes/{process.id}" in listing.text


def test_anonymous_ballot_page_redirects_to_login(db, client):
    process = make_process(db)
    r = client.get(f"/processes/{process.id}/ballot")
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=/processes/")


def test_approval_ballot_htmx_summary_confirm_cast_receipt(db, client, voter, mailbox):
    """The whole flow: the page, the htmx summary (partial only), the confirmation step, casting, the receipt
    page, its JSON download and the receipt e-mail."""
    process = make_process(db, max_choices=3)
    ids = project_ids(db, process)
    page = client.get(f"/processes/{process.id}/ballot")
    assert page.status_code == 200
    assert f'id="f-project-{ids[0]}"' in page.text and 'hx-post="/processes/' in page.text
    assert 'aria-live="polite"' in page.text

    preview = client.post_form(
        f"/processes/{process.id}/ballot/preview?scope=0", {"project": [str(ids[0]), str(ids[1])]}, headers=HX
    )
    assert preview.status_code == 200
    assert "<html" not in preview.text and 'id="chosen-count">2 / 3' in preview.text
    assert "Radweg Talachse" in preview.text

    too_many = client.post_form(
        f"/processes/{process.id}/ballot/preview?scope=0", {"project": [str(i) for i in ids[:4]]}, headers=HX
    )
    assert too_many.status_code == 200 and "höchstens 3 Projekte" in too_many.text

    review = client.post_form(
        f"/processes/{process.id}/ballot?scope=0", {"project": [str(ids[0]), str(ids[1])], "action": "review"}
    )
    assert review.status_code == 200 and "Stimmzettel bestätigen" in review.text
    selection = re.search(r'name="selection" value="([^"]+)"', review.text).group(1)
    assert json.loads(selection.replace("&#34;", '"')) == sorted(ids[:2])
    assert ballot_state(db, process) == (0, 0, 0)

    cast = client.post_form(
        f"/processes/{process.id}/ballot/cast",
        {"scope": "0", "selection": json.dumps(ids[:2]), "send_receipt": "on"},
    )
    assert cast.status_code == 303 and cast.headers["location"] == f"/processes/{process.id}/receipt?scope=0"
    assert ballot_state(db, process) == (1, 1, 1)
    (ballot,) = query(db, Ballot, Ballot.process_id == process.id)

    receipt = client.get(cast.headers["location"])
    assert receipt.status_code == 200 and ballot.ballot_uid in receipt.text
    assert receipt.headers["cache-control"] == "no-store"
    assert f'id="receipt-index">{ballot.log_index}<' in receipt.text

    download = client.get(f"/processes/{process.id}/receipt.json?scope=0")
    assert download.status_code == 200 and "attachment" in download.headers["content-disposition"]
    data = download.json()
    assert data["ballot"] == ballot.ballot_uid and data["index"] == ballot.log_index

    (mail,) = mailbox.to("rita@example.org")
    body = mailbox.body(mail)
    assert ballot.ballot_uid in body and data["entry_hash"] in body
    assert "Radweg" not in body  # the mail names no choices


def test_changing_the_ballot_over_http(db, client, voter):
    """The ballot page is pre-filled with the current ballot; casting again replaces it (ballot.replaced)."""
    process = make_process(db)
    ids = project_ids(db, process)
    client.post_form(
        f"/processes/{process.id}/ballot/cast", {"scope": "0", "selection": json.dumps([ids[0]])}
    )
    page = client.get(f"/processes/{process.id}/ballot")
    assert re.search(rf'id="f-project-{ids[0]}"[^>]*checked', page.text)
    assert "(Fassung 1)" in page.text
    r = client.post_form(
        f"/processes/{process.id}/ballot/cast", {"scope": "0", "selection": json.dumps([ids[5]])}
    )
    assert r.status_code == 303
    assert ballot_state(db, process) == (1, 1, 2)
    assert [e["payload"]["version"] for e in log_entries(db, process, "ballot.replaced")] == [2]


BAD = [
    # (ballot type, process fields, data builder (ids, other process ids, district ids) -> form data, error text)
    (
        "approval",
        {"max_choices": 2},
        lambda i, o, d: {"selection": json.dumps(i[:3])},
        "höchstens 2 Projekte",
    ),
    (
        "approval",
        {},
        lambda i, o, d: {"selection": json.dumps([i[0], 12345678])},
        "nicht auf diesem Stimmzettel",
    ),
    ("approval", {}, lambda i, o, d: {"selection": json.dumps(o[:1])}, "nicht auf diesem Stimmzettel"),
    ("approval", {}, lambda i, o, d: {"selection": json.dumps(d[:1])}, "nicht auf diesem Stimmzettel"),
    ("approval", {}, lambda i, o, d: {"selection": "[1, 2"}, "konnte nicht gelesen werden"),
    ("approval", {}, lambda i, o, d: {"selection": ""}, "konnte nicht gelesen werden"),
    ("approval", {}, lambda i, o, d: {"selection": "x" * 30_000}, "konnte nicht gelesen werden"),
    ("knapsack", {}, lambda i, o, d: {"selection": json.dumps(i[:4])}, "mehr als das Budget"),
    ("cumulative", {}, lambda i, o, d: {"selection": json.dumps({str(i[0]): 6})}, "höchstens 5 Punkte"),
    (
        "cumulative",
        {},
        lambda i, o, d: {"selection": json.dumps({str(i[0]): 5, str(i[1]): 5, str(i[2]): 3})},
        "höchstens 10 Punkte",
    ),
    ("cumulative", {}, lambda i, o, d: {"selection": json.dumps([i[0]])}, "konnte nicht gelesen werden"),
    ("ranked", {"max_choices": 2}, lambda i, o, d: {"selection": json.dumps(i[:3])}, "höchstens 2 Projekte"),
]


@pytest.mark.parametrize(("kind", "fields", "build", "text"), BAD)
def test_bad_ballots_are_refused_with_400_and_nothing_written(
    db, client, make_user, login, kind, fields, build, text
):
    """Every constraint is checked again when casting: too many, over budget, points over the limit,
    unknown project, project of another process or ballot, garbage JSON → 400 with the message, no
    ballot, no link, no log entry (SECURITY.md V2.2.1, V2.3.3)."""
    process = make_process(
        db,
        ballot_type=kind,
        budget_cents=400_000_00,
        projects=[*APPROVAL_PROJECTS, ("Elberfeld", 10_000_00, "elberfeld", None)],
        district_budgets={"elberfeld": 50_000_00},
        **fields,
    )
    other = make_process(db)
    user = set_district(db, make_user(), "elberfeld")
    login(user)
    data = build(
        project_ids(db, process),
        project_ids(db, other),
        project_ids(db, process, district_id(db, "elberfeld")),
    )
    before = len(log_entries(db, process))
    r = client.post_form(f"/processes/{process.id}/ballot/cast", {"scope": "0", **data})
    assert r.status_code == 400, r.text[:500]
    assert text in r.text
    assert 'id="e-selection"' in r.text
    assert ballot_state(db, process) == (0, 0, 0)
    assert len(log_entries(db, process)) == before


def test_garbage_form_values_are_field_errors(db, client, voter):
    """Form inputs that are not numbers become field errors (400 on "continue"), never exceptions."""
    process = make_process(db, ballot_type="cumulative")
    ids = project_ids(db, process)
    r = client.post_form(
        f"/processes/{process.id}/ballot?scope=0",
        {f"points-{ids[0]}": "drei", f"points-{ids[1]}": "2", "action": "review"},
    )
    assert r.status_code == 400
    assert f'id="e-points-{ids[0]}"' in r.text and "ganze Zahl" in r.text
    assert re.search(rf'id="f-points-{ids[1]}"[^>]*value="2"', r.text)
    r = client.post_form(f"/processes/{process.id}/ballot?scope=0", {"points-abc": "1", "action": "review"})
    assert r.status_code == 400 and "konnte nicht gelesen werden" in r.text
    approval = make_process(db)
    r = client.post_form(
        f"/processes/{approval.id}/ballot?scope=0", {"project": ["<script>", "1e9"], "action": "review"}
    )
    assert r.status_code == 400 and "<script>" not in r.text.split("<main")[1]
    assert client.get(f"/processes/{process.id}/ballot?scope=abc").status_code == 404
    assert client.get(f"/processes/{process.id}/ballot?scope=99999").status_code == 404
    assert ballot_state(db, process) == (0, 0, 0)


def test_knapsack_summary_shows_the_remaining_budget(db, client, voter):
    process = make_process(db, ballot_type="knapsack", budget_cents=300_000_00)
    ids = project_ids(db, process)
    r = client.post_form(
        f"/processes/{process.id}/ballot/preview?scope=0", {"project": [str(ids[0])]}, headers=HX
    )
    assert 'id="remaining-budget">120.000,00' in r.text
    r = client.post_form(
        f"/processes/{process.id}/ballot/preview?scope=0", {"project": [str(i) for i in ids[:3]]}, headers=HX
    )
    assert 'class="over">-95.000,00' in r.text and "mehr als das Budget" in r.text


def test_no_javascript_check_filter_and_ranking(db, client, voter):
    """Without JavaScript: "check" re-renders the page with the summary, the filter keeps choices that it
    hides, and the ranking's up/down buttons reorder it."""
    process = make_process(db, ballot_type="ranked", max_choices=3)
    ids = project_ids(db, process)
    url = f"/processes/{process.id}/ballot?scope=0"
    r = client.post_form(url, {f"rank-{ids[0]}": "1", f"rank-{ids[2]}": "2", "action": "check"})
    assert r.status_code == 200 and "<html" in r.text and "vollständig und gültig" in r.text
    r = client.post_form(url, {f"rank-{ids[0]}": "1", f"rank-{ids[2]}": "2", "action": f"move:{ids[2]}:up"})
    assert re.search(rf'name="rank-{ids[2]}"[^>]*>.*?<option value="1" selected>', r.text, re.S)
    assert re.search(rf'name="rank-{ids[0]}"[^>]*>.*?<option value="2" selected>', r.text, re.S)
    r = client.post_form(
        url, {f"rank-{ids[0]}": "1", "theme": str(theme_id(db, "energie-umwelt")), "action": "filter"}
    )
    assert f'id="f-rank-{ids[0]}"' not in r.text  # filtered out ...
    assert f'<input type="hidden" name="rank-{ids[0]}" value="1">' in r.text  # ... but kept
    assert "Stadtbäume" in r.text.split("ballot-projects")[1].split("ballot-side")[0]
    same = client.post_form(url, {f"rank-{ids[0]}": "1", f"rank-{ids[1]}": "1", "action": "review"})
    assert same.status_code == 400 and "nur einem Projekt" in same.text


def test_ineligible_and_closed_pages_explain_why(db, client, voter):
    """Refusals say why (age not verified: with the way to verification; closed vote) with 403."""
    aged = make_process(db, min_age=16)
    r = client.get(f"/processes/{aged.id}/ballot")
    assert r.status_code == 403 and "16" in r.text
    assert f'href="/account/verify?next=/processes/{aged.id}"' in r.text
    page = client.get(f"/processes/{aged.id}")
    assert "16" in page.text and 'href="/account/verify' in page.text
    closed = make_process(db, phase="closed")
    r = client.get(f"/processes/{closed.id}/ballot")
    assert r.status_code == 403 and "nicht geöffnet" in r.text
    r = client.post_form(f"/processes/{closed.id}/ballot/cast", {"scope": "0", "selection": "[1]"})
    assert r.status_code == 403
    assert client.get(f"/processes/{closed.id}/receipt?scope=0").status_code == 404


# --- staff -----------------------------------------------------------------------------------------------


@pytest.fixture
def staff(make_user, login):
    user = make_user(Role.STAFF, email="stefan@example.org", name="Stefan Stadt")
    login(user)
    return user


def test_staff_preflight_open_close_tally_publish_destroy(db, client, staff, make_user):
    """The staff page: the pre-flight list blocks opening (400, issues listed); opening, closing (the tally
    runs after the response), publishing (results with the tie note on the process page), destroying
    the voter links (needs the confirmation box)."""
    process = make_process(
        db, phase="preparation", projects=[("Ohne Kosten", None, None, None), ("Gut", 10_000_00, None, None)]
    )
    page = client.get(f"/staff/processes/{process.id}/voting")
    assert page.status_code == 200 and 'data-code="project_without_cost"' in page.text
    r = client.post_form(f"/staff/processes/{process.id}/voting/open")
    assert r.status_code == 400 and "Ohne Kosten" in r.text
    assert reload(db, process).voting_opened_at is None and log_entries(db, process) == []

    process = make_process(db, phase="preparation")
    r = client.post_form(f"/staff/processes/{process.id}/voting/open")
    assert r.status_code == 303 and reload(db, process).voting_opened_at is not None
    assert [e["type"] for e in log_entries(db, process)] == ["process.frozen", "process.opened"]
    assert client.post_form(f"/staff/processes/{process.id}/voting/publish").status_code == 400

    ids = project_ids(db, process)
    cast(db, client.app, process, make_user(), ids[:2])
    cast(db, client.app, process, make_user(), ids[1:3])
    r = client.post_form(f"/staff/processes/{process.id}/voting/close")
    assert r.status_code == 303
    runs = query(db, TallyRun, TallyRun.process_id == process.id)
    assert [(r.status, r.progress, r.ballots) for r in runs] == [("done", 100, 2)]
    status = client.get(f"/staff/processes/{process.id}/voting/tally", headers=HX)
    assert (
        status.status_code == 200
        and "hx-trigger" not in status.text
        and "Ergebnisse veröffentlichen" in status.text
    )

    r = client.post_form(f"/staff/processes/{process.id}/voting/publish")
    assert r.status_code == 303
    (published,) = log_entries(db, process, "tally.published")
    assert published["payload"]["selected"][0] == ids[1]
    page = client.get(f"/processes/{process.id}")
    assert "Bei Gleichstand entscheidet die Projekt-ID in aufsteigender Zeichenfolge" in page.text
    assert page.text.index("Stadtbäume") < page.text.index("Bei Gleichstand")

    r = client.post_form(f"/staff/processes/{process.id}/voting/destroy-links")
    assert r.status_code == 400 and 'id="e-confirm"' in r.text
    assert ballot_state(db, process)[1] == 2
    r = client.post_form(f"/staff/processes/{process.id}/voting/destroy-links", {"confirm": "on"})
    assert r.status_code == 303 and ballot_state(db, process) == (2, 0, 2)
    assert log_entries(db, process, "links.destroyed")[0]["payload"] == {"links": 2}
    assert client.post_form(f"/staff/processes/{process.id}/voting/nonsense").status_code == 404


def test_tally_status_polls_while_running(db, client, staff):
    """While a tally runs, its status partial asks htmx to poll every 2 seconds."""
    process = make_process(db, phase="voting")
    close(db, process)  # queued, not run
    r = client.get(f"/staff/processes/{process.id}/voting/tally", headers=HX)
    assert 'hx-trigger="every 2s"' in r.text and "<progress" in r.text
    page = client.get(f"/staff/processes/{process.id}/voting")
    assert 'hx-trigger="every 2s"' in page.text


def test_casting_and_previews_are_rate_limited_per_account(db, app, client, voter, monkeypatch):
    """Casting (each change is a log entry) and previews are limited per account (SECURITY.md V2.4.1):
    past the limit the answer is 429 and nothing is written."""
    from dataclasses import replace

    from voting import routes as voting_routes

    monkeypatch.setattr(voting_routes, "BALLOT_LIMITS", {"cast": (2, 3600), "preview": (1, 3600)})
    app.state.settings = replace(app.state.settings, rate_limit_enabled=True)
    process = make_process(db)
    ids = project_ids(db, process)
    url = f"/processes/{process.id}/ballot/cast"
    assert client.post_form(url, {"scope": "0", "selection": json.dumps([ids[0]])}).status_code == 303
    assert client.post_form(url, {"scope": "0", "selection": json.dumps([ids[1]])}).status_code == 303
    third = client.post_form(url, {"scope": "0", "selection": json.dumps([ids[2]])})
    assert third.status_code == 429 and "Retry-After" in third.headers
    assert ballot_state(db, process) == (1, 1, 2)
    preview = f"/processes/{process.id}/ballot/preview?scope=0"
    assert client.post_form(preview, {"project": [str(ids[0])]}, headers=HX).status_code == 200
    assert client.post_form(preview, {"project": [str(ids[0])]}, headers=HX).status_code == 429


@pytest.mark.parametrize("phase", ["preparation", "voting", "closed", "results"])
@pytest.mark.parametrize("kind", ["approval", "knapsack", "cumulative", "ranked"])
def test_every_page_renders_in_every_phase(db, app, make_user, login, phase, kind):
    """Process, ballot, receipt, staff and paper pages answer (200, 403 or 404 as expected, never 500) in
    every phase, for every ballot type, in German and in English."""
    from tests.conftest import Client

    process = make_process(
        db,
        phase="voting" if phase != "preparation" else "preparation",
        ballot_type=kind,
        projects=[*APPROVAL_PROJECTS, ("Elberfeld", 20_000_00, "elberfeld", None)],
        district_budgets={"elberfeld": 50_000_00},
        max_choices=3 if kind in ("approval", "ranked") else None,
    )
    resident = set_district(db, make_user(), "elberfeld")
    ids = project_ids(db, process)
    if phase != "preparation":
        selection = {str(ids[0]): 2} if kind == "cumulative" else ids[:2]
        cast(db, app, process, resident, selection)
    if phase in ("closed", "results"):
        close(db, process)
    if phase == "results":
        lifecycle.run_tally(db.engine, process_id=process.id)
        with new_session(db.engine, write=True) as s:
            lifecycle.publish_results(s, process=s.get(Process, process.id))
            s.commit()
    staff = make_user(Role.STAFF)
    pid, elberfeld = process.id, district_id(db, "elberfeld")
    for user, pages in (
        (
            resident,
            {
                f"/processes/{pid}": 200,
                f"/processes/{pid}/ballot": 200 if phase == "voting" else 403,
                f"/processes/{pid}/ballot?scope={elberfeld}": 200 if phase == "voting" else 403,
                f"/processes/{pid}/receipt?scope=0": 404 if phase == "preparation" else 200,
                f"/staff/processes/{pid}/voting": 403,
                "/processes": 200,
            },
        ),
        (
            staff,
            {
                f"/processes/{pid}": 200,
                f"/staff/processes/{pid}/voting": 200,
                f"/staff/processes/{pid}/paper": 200,
                f"/staff/processes/{pid}/paper?scope={elberfeld}": 200,
                f"/staff/processes/{pid}/voting/tally": 200,
            },
        ),
    ):
        for locale in ("de", "en"):
            with new_session(db.engine, write=True) as s:
                s.get(User, user.id).locale = locale
                s.commit()
            with Client(app, base_url="http://testserver", follow_redirects=False) as c:
                login(user, c=c)
                for path, status in pages.items():
                    r = c.get(path)
                    assert r.status_code == status, (path, locale, r.text[:300])
                    assert f'<html lang="{locale}">' in r.text or path.endswith("/tally")
