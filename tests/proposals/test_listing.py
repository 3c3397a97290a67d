"""The proposal list, theme pages and the home page: filters and sorting from allowlists, the stable random
order, pagination that keeps the filters, htmx partials, and the visibility rule on every list and count."""

from __future__ import annotations

import datetime as dt
import re

import pytest
from sqlalchemy import select, update

from app.database import utcnow
from proposals.models import Proposal
from tests.conftest import Client
from tests.proposals.proposal_helpers import district, make_proposal, theme


def _titles(html: str) -> list[str]:
    return re.findall(r'class="proposal-card-title"><a href="/proposals/\d+">([^<]+)</a>', html)


@pytest.fixture
def sample(db, make_user):
    """Five proposals in different themes, districts and statuses, plus a draft."""
    staff = make_user("staff")
    author = make_user()
    made = {
        "a": make_proposal(db, author, title="Alpha Vorschlag eins", theme_index=0, district_index=0),
        "b": make_proposal(db, make_user(), title="Beta Vorschlag zwei", theme_index=1, district_index=1),
        "c": make_proposal(
            db, make_user(), title="Gamma Vorschlag drei", theme_index=0, status="under_review", staff=staff
        ),
        "d": make_proposal(
            db, make_user(), title="Delta Vorschlag vier", theme_index=2, status="accepted", staff=staff
        ),
        "e": make_proposal(
            db, make_user(), title="Epsilon Vorschlag fünf", theme_index=0, status="withdrawn"
        ),
        "draft": make_proposal(db, author, title="Zeta geheimer Entwurf", theme_index=0, status="draft"),
    }
    made["author"] = author
    return made


def test_list_shows_public_proposals_only(client, sample):
    """CVE-2024-27090: drafts never appear in the list, for anyone."""
    html = client.get("/proposals").text
    assert sorted(_titles(html)) == sorted(
        [
            "Alpha Vorschlag eins",
            "Beta Vorschlag zwei",
            "Gamma Vorschlag drei",
            "Delta Vorschlag vier",
            "Epsilon Vorschlag fünf",
        ]
    )
    assert "5 Vorschläge" in html


def test_filters(client, db, sample):
    t0, t1 = theme(db, 0), theme(db, 1)
    assert sorted(_titles(client.get(f"/proposals?theme={t1.slug}").text)) == ["Beta Vorschlag zwei"]
    assert sorted(_titles(client.get(f"/proposals?theme={t0.slug}").text)) == [
        "Alpha Vorschlag eins",
        "Epsilon Vorschlag fünf",
        "Gamma Vorschlag drei",
    ]
    assert _titles(client.get(f"/proposals?district={district(db, 1).slug}").text) == ["Beta Vorschlag zwei"]
    assert _titles(client.get("/proposals?status=under_review").text) == ["Gamma Vorschlag drei"]
    assert sorted(_titles(client.get("/proposals?status=open").text)) == [
        "Alpha Vorschlag eins",
        "Beta Vorschlag zwei",
        "Gamma Vorschlag drei",
    ]
    assert _titles(client.get(f"/proposals?theme={t0.slug}&status=withdrawn").text) == [
        "Epsilon Vorschlag fünf"
    ]


def test_mine_and_followed(client, db, sample, make_user, login):
    """ "mine" includes the viewer's own drafts; "followed" lists followed public proposals only."""
    login(sample["author"])
    assert sorted(_titles(client.get("/proposals?scope=mine").text)) == [
        "Alpha Vorschlag eins",
        "Zeta geheimer Entwurf",
    ]
    assert _titles(client.get("/proposals?scope=followed").text) == ["Alpha Vorschlag eins"]
    reader = make_user()
    login(reader)
    client.post_form(f"/proposals/{sample['b'].id}/follow")
    assert _titles(client.get("/proposals?scope=followed").text) == ["Beta Vorschlag zwei"]
    assert _titles(client.get("/proposals?scope=mine").text) == []


def test_scope_is_ignored_for_anonymous_visitors(client, sample):
    assert len(_titles(client.get("/proposals?scope=mine").text)) == 5
    assert 'name="scope"' not in client.get("/proposals").text


def test_sort_orders(client, db, sample, make_user, login):
    """Newest, most supported and most discussed, from the allowlist."""
    fans = [make_user() for _ in range(2)]
    for fan in fans:
        login(fan)
        client.post_form(f"/proposals/{sample['b'].id}/support")
    login(fans[0])
    client.post_form(f"/proposals/{sample['c'].id}/support")
    with db.engine.begin() as conn:
        conn.execute(update(Proposal).where(Proposal.id == sample["d"].id).values(comment_count=7))
        for i, key in enumerate(["a", "b", "c", "d", "e"]):
            when = utcnow() - dt.timedelta(days=10 - i)
            conn.execute(update(Proposal).where(Proposal.id == sample[key].id).values(published_at=when))
    assert _titles(client.get("/proposals?sort=newest").text)[0] == "Epsilon Vorschlag fünf"
    assert _titles(client.get("/proposals").text)[0] == "Epsilon Vorschlag fünf"
    assert _titles(client.get("/proposals?sort=supported").text)[:2] == [
        "Beta Vorschlag zwei",
        "Gamma Vorschlag drei",
    ]
    assert _titles(client.get("/proposals?sort=discussed").text)[0] == "Delta Vorschlag vier"


@pytest.mark.parametrize(
    "params",
    [
        "sort=title",
        "sort=author_id",
        "sort=id;DROP TABLE proposal",
        "sort=support_count desc",
        "theme=unknown",
        "status=draft",
        "status=status",
        "district=1 OR 1=1",
        "scope=everything",
        "review=1",
    ],
)
def test_unknown_filter_and_sort_keys_fall_back(client, sample, params):
    """CVE-2023-34090 / CVE-2026-45376: keys come from an allowlist; anything else is ignored (default
    list, never drafts, never an error)."""
    response = client.get(f"/proposals?{params}")
    assert response.status_code == 200
    assert len(_titles(response.text)) == 5 and "Zeta geheimer Entwurf" not in response.text


@pytest.mark.parametrize(
    "page", ["<script>alert(1)</script>", "2%22%3E%3Cb%3E", "-5", "1e9", "99999999999999999999"]
)
def test_numeric_parameters_are_parsed_not_echoed(client, sample, page):
    """CVE-2024-32469: page numbers are parsed; the raw value never reaches the page."""
    response = client.get(f"/proposals?page={page}")
    assert response.status_code == 200
    assert "<script>alert" not in response.text and "<b>" not in response.text and "1e9" not in response.text


def test_pagination_keeps_the_filters(client, db, make_user):
    """20 per page; page links carry the filters, built from the parsed values only."""
    author = make_user()
    t0 = theme(db, 0)
    for i in range(23):
        make_proposal(db, author, title=f"Vorschlag Nummer {i:02d}", theme_index=0)
    make_proposal(db, author, title="Anderes Themenfeld hier", theme_index=1)
    first = client.get(f"/proposals?theme={t0.slug}&sort=newest&q=Vorschlag")
    assert len(_titles(first.text)) == 20 and "Seite 1 von 2" in first.text
    link = re.search(r'href="(/proposals\?[^"]*page=2[^"]*)"', first.text).group(1).replace("&amp;", "&")
    assert f"theme={t0.slug}" in link and "sort=newest" in link and "q=Vorschlag" in link
    second = client.get(link)
    assert len(_titles(second.text)) == 3 and "Anderes Themenfeld hier" not in second.text
    assert "Seite 2 von 2" in second.text
    assert len(_titles(client.get(f"/proposals?theme={t0.slug}&page=999").text)) == 3  # clamped to last page


def test_random_order_is_stable_per_visitor(client, app, db, make_user):
    """The random order is a permutation fixed by a seed in the visitor's session: the same visitor sees
    the same order on every request and page; other visitors get other orders."""
    author = make_user()
    for i in range(30):
        make_proposal(db, author, title=f"Zufallsvorschlag {i:02d}")
    page1 = _titles(client.get("/proposals?sort=random").text)
    page2 = _titles(client.get("/proposals?sort=random&page=2").text)
    assert page1 == _titles(client.get("/proposals?sort=random").text)
    assert len(set(page1 + page2)) == 30
    orders = set()
    for _ in range(3):
        with Client(app, base_url="http://testserver") as other:
            orders.add(tuple(_titles(other.get("/proposals?sort=random").text)))
    orders.add(tuple(page1))
    assert len(orders) > 1
    newest = _titles(client.get("/proposals?sort=newest").text)
    assert page1 != newest


def test_htmx_filter_returns_only_the_results(client, db, sample):
    """htmx: a filter change swaps the result list only; without htmx the full page comes back."""
    partial = client.get(f"/proposals?theme={theme(db, 1).slug}", headers={"HX-Request": "true"})
    assert "<html" not in partial.text and _titles(partial.text) == ["Beta Vorschlag zwei"]
    full = client.get(f"/proposals?theme={theme(db, 1).slug}")
    assert "<html" in full.text and 'hx-get="/proposals"' in full.text and 'hx-push-url="true"' in full.text


def test_theme_page_lists_and_counts_public_proposals(client, db, sample, make_user, login):
    """A theme page shows its public proposals with the list's filters, and counts of proposals, supports
    and comments that ignore drafts."""
    login(make_user())
    client.post_form(f"/proposals/{sample['a'].id}/support")
    with db.engine.begin() as conn:
        conn.execute(
            update(Proposal)
            .where(Proposal.id == sample["draft"].id)
            .values(support_count=50, comment_count=50)
        )
        conn.execute(update(Proposal).where(Proposal.id == sample["a"].id).values(comment_count=4))
    t0 = theme(db, 0)
    html = client.get(f"/themes/{t0.slug}").text
    assert sorted(_titles(html)) == ["Alpha Vorschlag eins", "Epsilon Vorschlag fünf", "Gamma Vorschlag drei"]
    counts = re.findall(r"<dt>(\w+)</dt><dd>(\d+)</dd>", html)
    assert counts == [("Vorschläge", "3"), ("Unterstützungen", "1"), ("Kommentare", "4")]
    assert _titles(client.get(f"/themes/{t0.slug}?status=under_review").text) == ["Gamma Vorschlag drei"]
    assert client.get("/themes/no-such-theme").status_code == 404


def test_home_shows_activity_per_theme_and_latest(client, db, sample):
    """The home page shows each theme's public proposals and new ones in the last 30 days (drafts never
    count), and the latest public proposals."""
    with db.engine.begin() as conn:
        old = utcnow() - dt.timedelta(days=40)
        conn.execute(update(Proposal).where(Proposal.id == sample["e"].id).values(published_at=old))
    html = client.get("/").text
    t0 = theme(db, 0)
    card = html.split(f'href="/themes/{t0.slug}"')[1].split("</li>")[0]
    assert "3 Vorschläge" in card and "2 neu in den letzten 30 Tagen" in card
    latest = html.split('id="latest-h"')[1]
    assert "Zeta geheimer Entwurf" not in latest and len(_titles(latest)) == 5
    assert _titles(latest)[-1] == "Epsilon Vorschlag fünf"


def test_random_order_matches_the_reference_on_both_databases(db, make_user):
    """The SQL hash gives exactly the order of its Python reference, so SQLite and PostgreSQL agree."""
    from app.database import new_session
    from proposals import listing

    author = make_user()
    for i in range(25):
        make_proposal(db, author, title=f"Zufallsvorschlag {i:02d}")
    seed = 987_654_321
    P, m = listing.RANDOM_P, seed
    c = (m * listing.RANDOM_A) % P

    def key(i: int) -> tuple[int, int]:
        x = (i * m + c) % P
        y = (x * x + m) % P
        return (y * y) % P, i

    with new_session(db.engine) as s:
        query = listing.ListQuery(sort="random")
        ids = [
            card.proposal.id for card in listing.list_proposals(s, query=query, viewer=None, seed=seed).cards
        ]
        all_ids = list(s.execute(select(Proposal.id)).scalars())
    assert ids == sorted(all_ids, key=key)[:20]


def test_history_restore_gets_the_full_page(client, sample):
    """After an htmx history cache miss the whole page is requested: it must not get the bare partial.
    Responses vary by the htmx headers, so caches keep the two apart."""
    response = client.get(
        "/proposals?sort=newest", headers={"HX-Request": "true", "HX-History-Restore-Request": "true"}
    )
    assert "<html" in response.text and len(_titles(response.text)) == 5
    assert "HX-Request" in response.headers["vary"]
