"""The read-only open-data API (/api/v1): every endpoint and parameter, bad input, the visibility rule,
consent for names, CORS and caching, the OpenAPI document, and golden files for the response format.

Golden files live in tests/proposals/api_golden/; after an intended format change, rewrite them with
``UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/proposals/test_api.py -k golden`` and review the diff.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import parse_qs, urlsplit

import jsonschema
import pytest
from sqlalchemy import select, update
from starlette.routing import Mount

from app.database import new_session
from app.models import User
from proposals import api, api_schema, search, visibility
from proposals.models import (
    Attachment,
    Comment,
    District,
    Proposal,
    ProposalStatusChange,
    Theme,
)
from tests.conftest import query

GOLDEN = Path(__file__).parent / "api_golden"
T0 = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


def at(hours: float) -> dt.datetime:
    return T0 + dt.timedelta(hours=hours)


# --- the data set -----------------------------------------------------------------------------------------


@pytest.fixture
def data(db, make_user):
    """Three public proposals, one draft, status history, an attachment and a comment thread.

    Alice agreed to show her name in open data; Bob did not; Dora deleted her account."""
    alice = make_user(name="Alice Open", email="alice@example.org")
    bob = make_user(name="Bob Private", email="bob@example.org")
    dora = make_user(name="Dora Gone", email="dora@example.org")
    with new_session(db.engine) as s:
        s.execute(update(User).where(User.id.in_([alice.id, dora.id])).values(is_name_public=True))
        s.execute(update(User).where(User.id == dora.id).values(deleted_at=at(100)))
        theme = {t.slug: t.id for t in s.execute(select(Theme)).scalars()}
        district = {d.slug: d.id for d in s.execute(select(District)).scalars()}

        def proposal(author, title, status, hours, **kw) -> Proposal:
            p = Proposal(
                author_id=author.id,
                theme_id=theme[kw.pop("theme", "mobilitaet-verkehr")],
                title=title,
                summary=kw.pop("summary", f"Summary of {title}"),
                body_md=kw.pop("body", f"Body of {title}"),
                body_html=f"<p>{kw.pop('body_html', f'Body of {title}')}</p>",
                status=status,
                created_at=at(hours - 1),
                updated_at=at(hours),
                published_at=None if status == "draft" else at(hours),
                **kw,
            )
            s.add(p)
            s.flush()
            search.index_proposal(s, proposal=p)
            return p

        bike = proposal(
            alice,
            "Protected bike lane on Friedrich-Ebert-Straße",
            "published",
            1,
            district_id=district["elberfeld"],
            body="A **Radschnellweg** through Elberfeld.",
            body_html="A <strong>Radschnellweg</strong> through Elberfeld.",
            address="Friedrich-Ebert-Straße 1, 42103 Wuppertal",
            lat=51.2562,
            lon=7.1403,
            cost_cents=125_000_00,
            support_count=7,
            comment_count=4,
        )
        trees = proposal(
            bob,
            "Plant trees along the Nordbahntrasse",
            "under_review",
            2,
            theme="energie-umwelt",
            summary="More shade: 100% native trees",
            support_count=12,
            comment_count=0,
        )
        bus = proposal(
            dora,
            "Night bus from Barmen to Ronsdorf",
            "rejected",
            3,
            district_id=district["barmen"],
            support_count=3,
            comment_count=1,
            decided_at=at(30),
        )
        draft = proposal(
            alice,
            "Secret draft about the Schwebebahn",
            "draft",
            4,
            district_id=district["elberfeld"],
            summary="DRAFTSUMMARY never public",
            cost_cents=99,
        )
        for frm, to, reason, hours in [
            ("draft", "published", "", 3),
            ("published", "under_review", "", 20),
            ("under_review", "rejected", "The city does not run night buses.", 30),
        ]:
            s.add(
                ProposalStatusChange(
                    proposal_id=bus.id, from_status=frm, to_status=to, reason=reason, at=at(hours)
                )
            )
        s.add(
            Attachment(
                proposal_id=bike.id,
                uploader_id=alice.id,
                storage_name="a" * 32,
                original_name="plan.pdf",
                content_type="application/pdf",
                size=2048,
                sha256="0" * 64,
                created_at=at(1),
            )
        )
        s.flush()

        def comment(proposal, author, hours, parent=None, **kw) -> Comment:
            c = Comment(
                proposal_id=proposal.id,
                author_id=author.id,
                parent_id=parent.id if parent else None,
                depth=parent.depth + 1 if parent else 0,
                body_md=kw.pop("body", f"Comment at {hours}"),
                body_html=f"<p>{kw.pop('html', f'Comment at {hours}')}</p>",
                created_at=at(hours),
                **kw,
            )
            s.add(c)
            s.flush()
            return c

        c1 = comment(bike, alice, 5, score=2, upvotes=2)
        c2 = comment(bike, bob, 6, parent=c1, score=-1, downvotes=1)
        c3 = comment(bike, alice, 7, parent=c1, deleted_at=at(8), html="DELETEDTEXT")
        c4 = comment(bike, dora, 9, edited_at=at(9.1))
        c5 = comment(bus, bob, 31)
        s.commit()
    return SimpleNamespace(
        alice=alice,
        bob=bob,
        dora=dora,
        bike=bike,
        trees=trees,
        bus=bus,
        draft=draft,
        comments=[c1, c2, c3, c4, c5],
    )


def get(client, path, status=200):
    response = client.get(path)
    assert response.status_code == status, (path, response.status_code, response.text)
    assert response.headers["content-type"].startswith("application/json")
    return response.json()


def ids(page) -> list[int]:
    return [item["id"] for item in page["items"]]


def walk(client, path) -> list[dict]:
    """All items of a paginated endpoint, following ``next`` links."""
    items, url, seen = [], path, 0
    while url:
        page = get(client, url)
        items += page["items"]
        url = page["next"]
        seen += 1
        assert seen < 100
    return items


# --- themes and districts ---------------------------------------------------------------------------------


def test_themes_list_all_nine_with_public_counts(client, data):
    """/api/v1/themes: id, slug, names and descriptions in German and English, count of public proposals."""
    items = get(client, "/api/v1/themes")["items"]
    assert len(items) == 9
    by_slug = {t["slug"]: t for t in items}
    mobility = by_slug["mobilitaet-verkehr"]
    assert mobility["name"] == {"de": "Mobilität und Verkehr", "en": "Mobility and transport"}
    assert mobility["description"]["de"].startswith("Bus, Schwebebahn")
    assert mobility["proposal_count"] == 2  # bike lane and night bus; the draft does not count
    assert by_slug["energie-umwelt"]["proposal_count"] == 1
    assert by_slug["bildung-kultur"]["proposal_count"] == 0
    assert mobility["proposals_url"] == "http://testserver/api/v1/proposals?theme=mobilitaet-verkehr"
    assert all(t["active"] for t in items)


def test_districts_list_with_public_counts(client, data):
    """/api/v1/districts: the ten districts with their count of public proposals (not the draft's)."""
    items = get(client, "/api/v1/districts")["items"]
    assert [d["slug"] for d in items][:2] == ["elberfeld", "elberfeld-west"]
    by_slug = {d["slug"]: d for d in items}
    assert len(items) == 10
    assert by_slug["elberfeld"]["proposal_count"] == 1
    assert by_slug["barmen"]["proposal_count"] == 1
    assert by_slug["ronsdorf"]["proposal_count"] == 0


def test_inactive_theme_is_listed_and_filterable(client, db, data):
    """An inactive theme area stays in the open data (its proposals still point to it)."""
    with new_session(db.engine) as s:
        s.execute(update(Theme).where(Theme.slug == "energie-umwelt").values(is_active=False))
        s.commit()
    themes = {t["slug"]: t for t in get(client, "/api/v1/themes")["items"]}
    assert themes["energie-umwelt"]["active"] is False
    assert ids(get(client, "/api/v1/proposals?theme=energie-umwelt")) == [data.trees.id]


# --- proposal list ----------------------------------------------------------------------------------------


def test_proposals_newest_first_without_drafts(client, data):
    """Default order: newest published first; the draft is not listed."""
    page = get(client, "/api/v1/proposals")
    assert ids(page) == [data.bus.id, data.trees.id, data.bike.id]
    assert page["next"] is None and page["limit"] == 20


@pytest.mark.parametrize(
    "query, expected",
    [
        ("theme=mobilitaet-verkehr", ["bus", "bike"]),
        ("theme=bildung-kultur", []),
        ("district=elberfeld", ["bike"]),
        ("district=barmen", ["bus"]),
        ("status=under_review", ["trees"]),
        ("status=rejected&theme=mobilitaet-verkehr", ["bus"]),
        ("status=accepted", []),
        ("theme=mobilitaet-verkehr&district=elberfeld&status=published", ["bike"]),
        ("sort=supported", ["trees", "bike", "bus"]),
        ("sort=discussed", ["bike", "bus", "trees"]),
        ("sort=newest", ["bus", "trees", "bike"]),
        ("q=bike", ["bike"]),
        ("q=NORDBAHNTRASSE", ["trees"]),
        ("q=night+bus", ["bus"]),
        ("q=100%25", ["trees"]),  # punctuation is no operator
        ("q=Radschnellwege", ["bike"]),  # the body, with German stemming
        ("q=B%C3%A4ume+Radschnellweg", []),  # all words must match
        ("q=%25", []),  # no words, no wildcard
        ("q=_", []),
        ("q=%22bike", ["bike"]),  # search syntax is just text
        ("q=Schwebebahn", []),  # only in the draft
        ("q=DRAFTSUMMARY", []),
        ("q=", ["bus", "trees", "bike"]),  # empty parameters count as absent
        ("q=%20%20", ["bus", "trees", "bike"]),  # so does a blank search term
    ],
)
def test_proposal_filters_and_sorts(client, data, query, expected):
    """Every filter and sort of /api/v1/proposals, alone and combined; search terms are not patterns."""
    page = get(client, f"/api/v1/proposals?{query}")
    assert ids(page) == [getattr(data, name).id for name in expected]


def test_list_item_fields(client, data):
    """A list item carries the public summary fields, theme and district as slugs, cost in cents."""
    item = next(i for i in get(client, "/api/v1/proposals")["items"] if i["id"] == data.bike.id)
    assert item["theme"] == "mobilitaet-verkehr" and item["district"] == "elberfeld"
    assert item["cost_cents"] == 12_500_000 and item["support_count"] == 7 and item["comment_count"] == 4
    assert item["published_at"] == "2025-03-01T10:00:00Z"
    assert item["url"] == f"http://testserver/proposals/{data.bike.id}"
    assert item["api_url"] == f"http://testserver/api/v1/proposals/{data.bike.id}"
    assert item["author"] == "Alice Open"


@pytest.mark.parametrize("sort", ["newest", "supported", "discussed"])
def test_cursor_pagination_visits_every_public_proposal_once(client, data, sort):
    """limit=1 pages through the whole list in the same order as one big page, each proposal once."""
    whole = ids(get(client, f"/api/v1/proposals?sort={sort}"))
    items = walk(client, f"/api/v1/proposals?sort={sort}&limit=1")
    assert [i["id"] for i in items] == whole and len(whole) == 3


def test_next_link_keeps_filters(client, data):
    """The next link repeats the validated filters and adds the cursor; the last page has none."""
    first = get(client, "/api/v1/proposals?theme=mobilitaet-verkehr&limit=1&sort=supported")
    parts = urlsplit(first["next"])
    assert (parts.scheme, parts.netloc, parts.path) == ("http", "testserver", "/api/v1/proposals")
    params = parse_qs(parts.query)
    assert (
        params["theme"] == ["mobilitaet-verkehr"]
        and params["limit"] == ["1"]
        and params["sort"] == ["supported"]
    )
    second = get(client, first["next"])
    assert ids(first) == [data.bike.id] and ids(second) == [data.bus.id] and second["next"] is None


def test_pagination_is_stable_under_inserts(client, db, data):
    """A proposal published between two page requests neither repeats nor pushes an item off the list."""
    first = get(client, "/api/v1/proposals?limit=2")
    with new_session(db.engine) as s:
        s.add(
            Proposal(
                author_id=data.bob.id,
                theme_id=data.bike.theme_id,
                title="Brand new proposal after page one",
                summary="New",
                body_md="x",
                body_html="<p>x</p>",
                status="published",
                published_at=dt.datetime.now(dt.UTC),
            )
        )
        s.commit()
    second = get(client, first["next"])
    assert ids(first) + ids(second) == [data.bus.id, data.trees.id, data.bike.id]


def test_limit_bounds(client, data):
    """limit 1 and 100 are accepted; the page size is reported."""
    assert get(client, "/api/v1/proposals?limit=1")["limit"] == 1
    assert len(get(client, "/api/v1/proposals?limit=100")["items"]) == 3


# --- bad input ------------------------------------------------------------------------------------------

BAD = [
    ("/api/v1/proposals?limit=0", "limit"),
    ("/api/v1/proposals?limit=101", "limit"),
    ("/api/v1/proposals?limit=1000", "limit"),
    ("/api/v1/proposals?limit=-1", "limit"),
    ("/api/v1/proposals?limit=1e2", "limit"),
    ("/api/v1/proposals?limit=%3Cscript%3E", "limit"),
    ("/api/v1/proposals?limit=99999999999999999999", "limit"),
    ("/api/v1/proposals?cursor=garbage", "cursor"),
    ("/api/v1/proposals?cursor=abc.def", "cursor"),
    ("/api/v1/proposals?cursor=%3Cscript%3Ealert(1)%3C/script%3E", "cursor"),
    ("/api/v1/proposals?theme=unknown", "theme"),
    ("/api/v1/proposals?theme=%3Cscript%3Ealert(1)%3C/script%3E", "theme"),
    ("/api/v1/proposals?district=atlantis", "district"),
    ("/api/v1/proposals?status=draft", "status"),
    ("/api/v1/proposals?status=hidden", "status"),
    ("/api/v1/proposals?sort=;DROP%20TABLE%20proposal", "sort"),
    ("/api/v1/proposals?sort=title", "sort"),
    ("/api/v1/proposals?q=" + "x" * 201, "q"),
    ("/api/v1/proposals?theme=bildung-kultur&theme=energie-umwelt", "theme"),
    ("/api/v1/proposals?limit=&limit=5", "limit"),
    ("/api/v1/proposals/{bike}/comments?limit=0", "limit"),
    ("/api/v1/proposals/{bike}/comments?cursor=garbage", "cursor"),
]


@pytest.mark.parametrize("path, parameter", BAD)
def test_bad_parameters_answer_400_naming_the_parameter(client, data, path, parameter):
    """CVE-2024-32469, CVE-2023-34090: parameters are parsed and bounded; a bad one is a 400 that names it and
    does not echo the value."""
    response = client.get(path.format(bike=data.bike.id))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_parameter"
    assert error["parameter"] == parameter and parameter in error["message"]
    assert "<script>" not in response.text and "DROP" not in response.text and "atlantis" not in response.text
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/proposals?page=2",
        "/api/v1/proposals?author_id=1",
        "/api/v1/proposals?order=id;DROP",
        "/api/v1/themes?x=%3Cscript%3E",
        "/api/v1/districts?limit=5",
        "/api/v1/proposals/{bike}?fields=email",
        "/api/v1/proposals/{bike}/comments?sort=newest",
    ],
)
def test_unknown_parameters_are_refused(client, data, path):
    """Only allowlisted parameters are interpreted (CVE-2023-34090); an unknown one is a 400 without echo."""
    response = client.get(path.format(bike=data.bike.id))
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["code"] == "invalid_parameter" and "Allowed" in body["error"]["message"]
    assert "<script>" not in response.text and "email" not in response.text and "DROP" not in response.text


def test_cursor_is_signed_and_tied_to_its_sort(client, data):
    """A cursor from another sort order, or with its payload altered, is refused."""
    nxt = get(client, "/api/v1/proposals?limit=1")["next"]
    cursor = parse_qs(urlsplit(nxt).query)["cursor"][0]
    response = client.get(f"/api/v1/proposals?sort=supported&cursor={cursor}")
    assert response.status_code == 400 and response.json()["error"]["parameter"] == "cursor"
    body, mac = cursor.split(".")
    forged = api._b64(json.dumps(["newest", "2100-01-01T00:00:00+00:00", 1]).encode())
    assert client.get(f"/api/v1/proposals?cursor={forged}.{mac}").status_code == 400
    altered = ("B" if mac[0] != "B" else "C") + mac[1:]
    assert client.get(f"/api/v1/proposals?cursor={body}.{altered}").status_code == 400
    # a comment cursor is no proposal cursor
    cnext = get(client, f"/api/v1/proposals/{data.bike.id}/comments?limit=1")["next"]
    ccursor = parse_qs(urlsplit(cnext).query)["cursor"][0]
    assert client.get(f"/api/v1/proposals?cursor={ccursor}").status_code == 400


def test_sql_in_parameters_is_just_data(client, db, data):
    """CVE-2026-45376, V1.2.4: search terms and sort values never become SQL."""
    for q in ["'; DROP TABLE proposal; --", '" OR 1=1 --', "%' OR '1'='1"]:
        assert get(client, f"/api/v1/proposals?q={q}")["items"] == []
    assert client.get("/api/v1/proposals?sort=id%20DESC;%20DELETE%20FROM%20proposal").status_code == 400
    assert len(query(db, Proposal)) == 4


@pytest.mark.parametrize(
    "path",
    ["/api/v1/proposals/{draft}", "/api/v1/proposals/999999"],
)
def test_missing_or_unpublished_proposal_is_404(client, data, path):
    """A draft answers exactly like a proposal that does not exist: 404 in the API error shape."""
    response = client.get(path.format(draft=data.draft.id))
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "No such public proposal."}}
    response = client.get(path.format(draft=data.draft.id) + "/comments")
    assert response.status_code == 404


def test_non_numeric_id_and_unknown_path_are_404_json(client, data):
    """Paths outside the API's routes answer with the JSON error shape too."""
    for path in [
        "/api/v1/proposals/abc",
        "/api/v1/proposals/99999999999999999999999",  # beyond any id: no route matches, as for "abc"
        "/api/v1/nothing",
        "/api/v1/proposals/1/supports",
    ]:
        response = client.get(path)
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


def test_api_is_read_only(client, data):
    """Unsafe methods are refused (no CSRF token can make the API write anything)."""
    assert client.post("/api/v1/proposals", json={"title": "x"}).status_code in (403, 405)
    assert client.delete(f"/api/v1/proposals/{data.bike.id}").status_code in (403, 405)
    assert len(get(client, "/api/v1/proposals")["items"]) == 3


# --- proposal detail and comments ---------------------------------------------------------------------


def test_proposal_detail_fields(client, data):
    """/api/v1/proposals/{id}: body HTML, place, cost, counters, version, timestamps, attachments."""
    p = get(client, f"/api/v1/proposals/{data.bike.id}")
    assert p["title"] == "Protected bike lane on Friedrich-Ebert-Straße"
    assert p["body_html"] == "<p>A <strong>Radschnellweg</strong> through Elberfeld.</p>"
    assert (p["address"], p["lat"], p["lon"]) == (
        "Friedrich-Ebert-Straße 1, 42103 Wuppertal",
        51.2562,
        7.1403,
    )
    assert p["version"] == 1 and p["status"] == "published" and p["status_history"] == []
    assert p["created_at"] == "2025-03-01T09:00:00Z" and p["decided_at"] is None
    [attachment] = p["attachments"]
    assert attachment["name"] == "plan.pdf" and attachment["size"] == 2048
    assert (
        attachment["download_url"]
        == f"http://testserver/proposals/{data.bike.id}/attachments/{attachment['id']}"
    )
    assert "storage_name" not in attachment and "uploader_id" not in attachment
    assert p["comments_url"] == f"http://testserver/api/v1/proposals/{data.bike.id}/comments"


def test_status_history_with_public_reasons(client, data):
    """The lifecycle with timestamps and the public reason of a rejection; who made a step is not shown."""
    p = get(client, f"/api/v1/proposals/{data.bus.id}")
    assert p["status"] == "rejected" and p["decided_at"] == "2025-03-02T15:00:00Z"
    assert p["status_history"] == [
        {"from": "draft", "to": "published", "reason": None, "at": "2025-03-01T12:00:00Z"},
        {"from": "published", "to": "under_review", "reason": None, "at": "2025-03-02T05:00:00Z"},
        {
            "from": "under_review",
            "to": "rejected",
            "reason": "The city does not run night buses.",
            "at": "2025-03-02T15:00:00Z",
        },
    ]


def test_comments_oldest_first_with_deleted_placeholders(client, data):
    """/comments: oldest first, threading fields, deleted comments without text or author, edits marked."""
    items = get(client, f"/api/v1/proposals/{data.bike.id}/comments")["items"]
    c1, c2, c3, c4 = data.comments[:4]
    assert [c["id"] for c in items] == [c1.id, c2.id, c3.id, c4.id]
    assert [(c["parent_id"], c["depth"]) for c in items] == [(None, 0), (c1.id, 1), (c1.id, 1), (None, 0)]
    assert items[0]["score"] == 2 and items[1]["score"] == -1
    deleted = items[2]
    assert deleted["deleted"] is True and deleted["body_html"] is None and deleted["author"] is None
    assert "DELETEDTEXT" not in json.dumps(items)
    assert items[3]["edited_at"] == "2025-03-01T18:06:00Z" and items[0]["edited_at"] is None
    assert items[0]["deleted"] is False and items[0]["body_html"] == "<p>Comment at 5</p>"


def test_comment_pagination(client, data):
    """Comments page by cursor, oldest first, each once; a new comment appears on the last page."""
    c1, c2, c3, c4 = data.comments[:4]
    assert [c["id"] for c in walk(client, f"/api/v1/proposals/{data.bike.id}/comments?limit=3")] == [
        c1.id,
        c2.id,
        c3.id,
        c4.id,
    ]
    first = get(client, f"/api/v1/proposals/{data.bike.id}/comments?limit=2")
    assert "limit=2" in first["next"]


# --- consent and personal data -----------------------------------------------------------------------------


def all_responses(client, data) -> list[str]:
    paths = [
        "/api/v1/themes",
        "/api/v1/districts",
        "/api/v1/openapi.json",
        "/api/v1/proposals",
        "/api/v1/proposals?limit=1",
        "/api/v1/proposals?sort=supported",
        "/api/v1/proposals?sort=discussed",
        "/api/v1/proposals?theme=mobilitaet-verkehr",
        "/api/v1/proposals?district=elberfeld",
        "/api/v1/proposals?q=Schwebebahn",
        "/api/v1/proposals?q=Secret",
    ]
    for p in (data.bike, data.trees, data.bus):
        paths += [f"/api/v1/proposals/{p.id}", f"/api/v1/proposals/{p.id}/comments"]
    return [client.get(path).text for path in paths]


def test_author_names_only_with_consent(client, data):
    """Display names appear only for authors who agreed (is_name_public); never for a deleted account."""
    by_id = {p["id"]: p for p in get(client, "/api/v1/proposals")["items"]}
    assert by_id[data.bike.id]["author"] == "Alice Open"
    assert by_id[data.trees.id]["author"] is None  # Bob did not agree
    assert by_id[data.bus.id]["author"] is None  # Dora agreed but deleted her account
    assert get(client, f"/api/v1/proposals/{data.trees.id}")["author"] is None
    comments = get(client, f"/api/v1/proposals/{data.bike.id}/comments")["items"]
    assert [c["author"] for c in comments] == ["Alice Open", None, None, None]


def test_no_personal_data_anywhere(client, data):
    """No e-mail address, no account id, no name without consent in any response."""
    for body in all_responses(client, data):
        assert "example.org" not in body and not re.search(r"[\w.+-]+@[\w-]+\.\w", body)
        assert "Bob Private" not in body and "Dora Gone" not in body
        assert not re.search(r'"(author_id|user_id|uploader_id|actor_id|email)"', body)


def test_consent_withdrawn_takes_effect_at_once(client, db, data):
    """When Alice withdraws her consent, her name disappears from the next responses."""
    with new_session(db.engine) as s:
        s.execute(update(User).where(User.id == data.alice.id).values(is_name_public=False))
        s.commit()
    assert all("Alice Open" not in body for body in all_responses(client, data))


# --- the visibility rule --------------------------------------------------------------------------------


def test_draft_absent_from_every_endpoint_and_count(client, data):
    """CVE-2024-27090, CVE-2026-40870: the draft's id, title, summary and cost appear nowhere, and no count
    includes it (themes, districts)."""
    for body in all_responses(client, data):
        assert "Secret draft" not in body and "DRAFTSUMMARY" not in body
        assert f"/proposals/{data.draft.id}" not in body
    themes = {t["slug"]: t["proposal_count"] for t in get(client, "/api/v1/themes")["items"]}
    districts = {d["slug"]: d["proposal_count"] for d in get(client, "/api/v1/districts")["items"]}
    assert themes["mobilitaet-verkehr"] == 2 and districts["elberfeld"] == 1
    assert sum(themes.values()) == 3 and sum(districts.values()) == 2
    assert client.get(f"/api/v1/proposals/{data.draft.id}").status_code == 404
    assert data.draft.id not in ids(get(client, "/api/v1/proposals?status=published&limit=100"))


@pytest.fixture
def hidden(monkeypatch, data):
    """Moderation's way of hiding content: an extra condition registered with the visibility module."""
    monkeypatch.setitem(visibility._filters, "proposal", [lambda: Proposal.id != data.trees.id])
    monkeypatch.setitem(visibility._filters, "comment", [lambda: Comment.id != data.comments[1].id])
    return data


@pytest.mark.parametrize(
    "field",
    [
        "themes.proposal_count",
        "districts.proposal_count",
        "proposals.items",
        "proposals.q",
        "proposals.status",
        "proposals.sort",
        "proposal.detail",
        "proposal.comments",
        "comments.items",
    ],
)
def test_hidden_content_absent(client, hidden, field):
    """CVE-2026-40870: one test per API field that could leak hidden content: the API applies the same
    registered visibility conditions as the HTML pages."""
    d = hidden
    if field == "themes.proposal_count":
        themes = {t["slug"]: t["proposal_count"] for t in get(client, "/api/v1/themes")["items"]}
        assert themes["energie-umwelt"] == 0
    elif field == "districts.proposal_count":
        assert sum(x["proposal_count"] for x in get(client, "/api/v1/districts")["items"]) == 2
    elif field == "proposals.items":
        assert d.trees.id not in ids(get(client, "/api/v1/proposals"))
    elif field == "proposals.q":
        assert get(client, "/api/v1/proposals?q=Nordbahntrasse")["items"] == []
    elif field == "proposals.status":
        assert get(client, "/api/v1/proposals?status=under_review")["items"] == []
    elif field == "proposals.sort":
        for sort in api.PROPOSAL_SORTS:
            assert d.trees.id not in [i["id"] for i in walk(client, f"/api/v1/proposals?sort={sort}&limit=1")]
    elif field == "proposal.detail":
        assert client.get(f"/api/v1/proposals/{d.trees.id}").status_code == 404
    elif field == "proposal.comments":
        assert client.get(f"/api/v1/proposals/{d.trees.id}/comments").status_code == 404
    elif field == "comments.items":
        items = walk(client, f"/api/v1/proposals/{d.bike.id}/comments?limit=1")
        assert d.comments[1].id not in [c["id"] for c in items] and len(items) == 3


# --- headers ---------------------------------------------------------------------------------------------

ENDPOINTS = [
    "/api/v1/themes",
    "/api/v1/districts",
    "/api/v1/proposals",
    "/api/v1/proposals/{bike}",
    "/api/v1/proposals/{bike}/comments",
    "/api/v1/openapi.json",
]


@pytest.mark.parametrize("path", ENDPOINTS)
def test_cors_and_caching_headers(client, login, data, path):
    """Open data: any origin may read it (no credentials), caches may keep it for a minute, and no cookie
    is set, even for a signed-in visitor."""
    login(data.alice)
    response = client.get(path.format(bike=data.bike.id), headers={"Origin": "https://example.net"})
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    assert "access-control-allow-credentials" not in response.headers
    assert response.headers["cache-control"] == "public, max-age=60"
    assert "set-cookie" not in response.headers
    assert response.headers["x-content-type-options"] == "nosniff"
    head = client.head(path.format(bike=data.bike.id))
    assert head.status_code == 200 and head.content == b""
    preflight = client.options(path.format(bike=data.bike.id), headers={"Origin": "https://example.net"})
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == "*"
    assert "GET" in preflight.headers["access-control-allow-methods"]


# --- the OpenAPI document ---------------------------------------------------------------------------------


def _api_paths(routes, prefix="") -> set[str]:
    out: set[str] = set()
    for route in routes:
        path = prefix + getattr(route, "path", "")
        if isinstance(route, Mount):
            out |= _api_paths(route.routes, path)
        elif path.startswith("/api/v1"):
            out.add(re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", path))
    return out


def test_openapi_describes_every_route_and_parameter(client, app, data):
    """Every /api/v1 route of the app is in the OpenAPI document, with exactly the parameters it accepts."""
    doc = get(client, "/api/v1/openapi.json")
    assert doc["openapi"].startswith("3.1") and doc["servers"] == [{"url": "http://testserver"}]
    assert _api_paths(app.routes) <= set(doc["paths"])
    params = doc["components"]["parameters"]

    def documented(path: str) -> set[str]:
        refs = doc["paths"][path]["get"]["parameters"]
        return {
            params[r["$ref"].rsplit("/", 1)[1]]["name"]
            for r in refs
            if params[r["$ref"].rsplit("/", 1)[1]]["in"] == "query"
        }

    assert documented("/api/v1/proposals") == set(api.PROPOSAL_PARAMS)
    assert documented("/api/v1/proposals/{id}/comments") == set(api.COMMENT_PARAMS)
    assert documented("/api/v1/themes") == documented("/api/v1/districts") == set()
    sort_enum = params["sort"]["schema"]["enum"]
    assert sort_enum == list(api.PROPOSAL_SORTS)
    assert params["status"]["schema"]["enum"] == list(api.PUBLIC_STATUS_VALUES)
    assert params["limit"]["schema"]["maximum"] == api.MAX_LIMIT
    # every $ref resolves
    for ref in re.findall(r'"\$ref": "#/([^"]+)"', json.dumps(doc)):
        node = doc
        for part in ref.split("/"):
            node = node[part]


def validate(doc: dict, schema_name: str, instance) -> None:
    schema = {"$ref": f"#/components/schemas/{schema_name}", "components": doc["components"]}
    jsonschema.Draft202012Validator(schema).validate(instance)


def test_responses_match_documented_schemas(client, data):
    """Real responses of every endpoint validate against the document's strict schemas (no undocumented
    field can slip in), including errors."""
    doc = get(client, "/api/v1/openapi.json")
    jsonschema.Draft202012Validator.check_schema({"components": doc["components"]})
    checks = [
        ("/api/v1/themes", "ThemeList"),
        ("/api/v1/districts", "DistrictList"),
        ("/api/v1/proposals", "ProposalPage"),
        ("/api/v1/proposals?limit=1&sort=discussed", "ProposalPage"),
        (f"/api/v1/proposals/{data.bike.id}", "Proposal"),
        (f"/api/v1/proposals/{data.bus.id}", "Proposal"),
        (f"/api/v1/proposals/{data.trees.id}", "Proposal"),
        (f"/api/v1/proposals/{data.bike.id}/comments", "CommentPage"),
        (f"/api/v1/proposals/{data.bike.id}/comments?limit=1", "CommentPage"),
    ]
    for path, name in checks:
        validate(doc, name, get(client, path))
    for path, status in [("/api/v1/proposals?limit=0", 400), (f"/api/v1/proposals/{data.draft.id}", 404)]:
        validate(doc, "Error", get(client, path, status))
    with pytest.raises(jsonschema.ValidationError):
        item = get(client, "/api/v1/proposals")["items"][0]
        validate(doc, "ProposalSummary", {**item, "email": "x@example.org"})


def test_extend_refuses_to_redescribe_a_path():
    """Other packages add their paths with extend(); an existing path cannot be silently replaced."""
    with pytest.raises(ValueError):
        api_schema.extend({"/api/v1/themes": {}})


# --- golden files -----------------------------------------------------------------------------------------


def normalise(value, labels: dict[int, str], kind: str):
    """Replace database ids by stable labels (ids may differ between backends and runs) and cursors by a
    placeholder; everything else (field names, order, types, timestamps) must match exactly."""
    if isinstance(value, list):
        return [normalise(v, labels, kind) for v in value]
    if isinstance(value, dict):
        out = {}
        for key, v in value.items():
            if key == "id" and isinstance(v, int):
                out[key] = labels.get((kind, v), f"{kind}:?")
            elif key == "parent_id" and isinstance(v, int):
                out[key] = labels.get(("comment", v), "comment:?")
            elif key == "attachments":
                out[key] = normalise(v, labels, "attachment")
            else:
                out[key] = normalise(v, labels, kind)
        return out
    if isinstance(value, str):
        value = re.sub(r"cursor=[A-Za-z0-9_.-]+", "cursor=CURSOR", value)
        value = re.sub(
            r"/proposals/(\d+)", lambda m: "/proposals/" + labels.get(("proposal", int(m[1])), "?"), value
        )
        return re.sub(
            r"/attachments/(\d+)",
            lambda m: "/attachments/" + labels.get(("attachment", int(m[1])), "?"),
            value,
        )
    return value


def test_golden_files(client, db, data):
    """The response format of each endpoint is stable: compare with the versioned golden files."""
    labels = {("proposal", getattr(data, n).id): n for n in ("bike", "trees", "bus", "draft")}
    labels |= {("comment", c.id): f"c{i}" for i, c in enumerate(data.comments, 1)}
    labels |= {("attachment", a.id): f"a{i}" for i, a in enumerate(query(db, Attachment), 1)}
    labels |= {("theme", t.id): t.slug for t in query(db, Theme)}
    labels |= {("district", d.id): d.slug for d in query(db, District)}
    cases = {
        "themes": ("/api/v1/themes", "theme"),
        "districts": ("/api/v1/districts", "district"),
        "proposals": ("/api/v1/proposals", "proposal"),
        "proposals_page": ("/api/v1/proposals?theme=mobilitaet-verkehr&sort=supported&limit=1", "proposal"),
        "proposal": (f"/api/v1/proposals/{data.bike.id}", "proposal"),
        "proposal_rejected": (f"/api/v1/proposals/{data.bus.id}", "proposal"),
        "comments": (f"/api/v1/proposals/{data.bike.id}/comments", "comment"),
        "comments_page": (f"/api/v1/proposals/{data.bike.id}/comments?limit=2", "comment"),
        "error_400": ("/api/v1/proposals?limit=0", "error"),
        "error_404": ("/api/v1/proposals/999999", "error"),
        "openapi": ("/api/v1/openapi.json", "doc"),
    }
    update_golden = os.environ.get("UPDATE_GOLDEN") == "1"
    for name, (path, kind) in cases.items():
        actual = normalise(client.get(path).json(), labels, kind)
        file = GOLDEN / f"{name}.json"
        rendered = json.dumps(actual, indent=2, ensure_ascii=False, sort_keys=False) + "\n"
        if update_golden:
            GOLDEN.mkdir(exist_ok=True)
            file.write_text(rendered)
        assert file.exists(), f"missing golden file {file.name}; run with UPDATE_GOLDEN=1"
        assert rendered == file.read_text(), f"{name}: response format changed (see {file})"
