"""Full-text search with German stemming on SQLite (FTS5) and PostgreSQL (tsvector), its visibility, its
ranking, and user input that must never become query syntax or markup."""

from __future__ import annotations

import re

import pytest

from proposals import search
from tests.proposals.proposal_helpers import form_data, make_proposal

BIKE = "Ein sicherer Fahrradweg an der Talsohle verbindet Elberfeld und Barmen."


def _titles(html: str) -> list[str]:
    return re.findall(r'class="proposal-card-title"><a href="/proposals/\d+">([^<]+)</a>', html)


def test_stemming_finds_inflected_forms(client, db, make_user):
    """ "Fahrradwege" finds a proposal saying "Fahrradweg" (German stemming on both databases); "Radweg"
    (another word) does not."""
    make_proposal(db, make_user(), title="Verbindung durchs Tal", body=BIKE)
    make_proposal(db, make_user(), title="Mehr Bänke im Park", body="Sitzgelegenheiten für alle.")
    assert _titles(client.get("/proposals?q=Fahrradwege").text) == ["Verbindung durchs Tal"]
    assert _titles(client.get("/proposals?q=fahrradweg").text) == ["Verbindung durchs Tal"]
    assert _titles(client.get("/proposals?q=Bank").text) == ["Mehr Bänke im Park"]
    assert _titles(client.get("/proposals?q=Radweg").text) == []


def test_search_covers_title_summary_and_body(client, db, make_user):
    make_proposal(db, make_user(), title="Wasserspender am Rathaus aufstellen", summary="Kurz.", body="Text.")
    make_proposal(
        db, make_user(), title="Anderes Thema im Norden", summary="Trinkbrunnen im Sommer.", body="Text."
    )
    make_proposal(db, make_user(), title="Drittes Thema im Westen", summary="Kurz.", body="Ein Schwimmteich.")
    assert _titles(client.get("/proposals?q=Wasserspender").text) == ["Wasserspender am Rathaus aufstellen"]
    assert _titles(client.get("/proposals?q=Trinkbrunnen").text) == ["Anderes Thema im Norden"]
    assert _titles(client.get("/proposals?q=Schwimmteich").text) == ["Drittes Thema im Westen"]
    # several words: all must match
    assert _titles(client.get("/proposals?q=Wasserspender Rathaus").text) == [
        "Wasserspender am Rathaus aufstellen"
    ]
    assert _titles(client.get("/proposals?q=Wasserspender Schwimmteich").text) == []


def test_best_match_first(client, db, make_user):
    """Relevance is the default order with a query: a title match ranks above a body match."""
    make_proposal(db, make_user(), title="Ein Vorschlag zur Stadtreinigung", body="Es geht um Laternen.")
    make_proposal(db, make_user(), title="Laternen für den Nordpark", body="Mehr Licht, mehr Laternen.")
    html = client.get("/proposals?q=Laterne").text
    assert _titles(html) == ["Laternen für den Nordpark", "Ein Vorschlag zur Stadtreinigung"]
    assert re.search(r'<option value="relevance" selected', html)


def test_search_respects_visibility(client, db, make_user, login):
    """CVE-2024-27090: drafts never appear in search results, not even for their author outside "mine"."""
    author = make_user()
    make_proposal(db, author, title="Geheimer Entwurf zur Seilbahn", status="draft", body="Seilbahn")
    make_proposal(db, make_user(), title="Öffentliche Seilbahn-Idee", body="Seilbahn")
    assert _titles(client.get("/proposals?q=Seilbahn").text) == ["Öffentliche Seilbahn-Idee"]
    login(author)
    assert _titles(client.get("/proposals?q=Seilbahn").text) == ["Öffentliche Seilbahn-Idee"]
    assert "Geheimer Entwurf zur Seilbahn" in client.get("/proposals?q=Seilbahn&scope=mine").text


def test_search_with_filters(client, db, make_user):
    make_proposal(db, make_user(), title="Seilbahn im Themenfeld eins", body="Seilbahn", theme_index=0)
    make_proposal(db, make_user(), title="Seilbahn im Themenfeld zwei", body="Seilbahn", theme_index=1)
    slug = re.search(r'href="/themes/([a-z-]+)"', client.get("/").text).group(1)
    assert _titles(client.get(f"/proposals?q=Seilbahn&theme={slug}").text) == ["Seilbahn im Themenfeld eins"]
    assert _titles(client.get(f"/themes/{slug}?q=Seilbahn").text) == ["Seilbahn im Themenfeld eins"]


def test_edits_update_the_index(client, db, make_user, login):
    """The index is kept in sync in the same transaction as every edit."""
    author = make_user()
    p = make_proposal(db, author, title="Alter Titel mit Kastanie", body="Kastanienbaum")
    login(author)
    client.post_form(
        f"/proposals/{p.id}/edit", form_data(db, title="Neuer Titel mit Linde", body="Lindenbaum")
    )
    assert _titles(client.get("/proposals?q=Linde").text) == ["Neuer Titel mit Linde"]
    assert _titles(client.get("/proposals?q=Kastanie").text) == []


@pytest.mark.parametrize(
    "q",
    [
        '"',
        "NEAR(a b)",
        "title:Licht",
        "Licht*",
        "-Licht",
        "a OR b",
        "^Licht",
        "(((",
        "' OR 1=1 --",
        "\\",
        "🚲 ✓",
    ],
)
def test_query_syntax_is_never_interpreted(client, db, make_user, q):
    """ASVS V1.2.4: FTS syntax and SQL in the query are plain words (bound, quoted): no error, no injection."""
    make_proposal(db, make_user(), title="Mehr Licht im Nordpark")
    response = client.get("/proposals", params={"q": q})
    assert response.status_code == 200


def test_fts5_match_quotes_every_term():
    """Every term is a quoted FTS5 string; quotes are doubled; operators become words."""
    assert search.fts5_match('Fahrradwege "NEAR" col:x*') == '"fahrradweg" "near" "col" "x"'
    assert search.fts5_match("!!! ...") == ""


def test_search_term_is_escaped_in_the_summary(client, db, make_user):
    """consul #4793 / #4805: the search term is shown escaped in the results summary and the input."""
    make_proposal(db, make_user(), title="Mehr Licht im Nordpark")
    payload = '<b>fett</b>"><script>alert(1)</script>'
    html = client.get("/proposals", params={"q": payload}).text
    assert "<script>alert(1)" not in html and "<b>fett</b>" not in html
    assert "&lt;b&gt;fett&lt;/b&gt;" in html


def test_htmx_search_returns_the_result_list(client, db, make_user):
    """htmx: typing in the search field swaps only the result list (and the live status)."""
    make_proposal(db, make_user(), title="Mehr Licht im Nordpark")
    response = client.get("/proposals?q=Licht", headers={"HX-Request": "true"})
    assert response.status_code == 200 and "<html" not in response.text
    assert _titles(response.text) == ["Mehr Licht im Nordpark"]
    assert 'id="results-status"' in response.text and 'hx-swap-oob="true"' in response.text


def test_reindex_all_rebuilds_the_index(db, make_user):
    """After a bulk import, reindex_all fills the SQLite index from the proposals."""
    from sqlalchemy import text

    from app.database import new_session

    make_proposal(db, make_user(), title="Mehr Licht im Nordpark")
    with new_session(db.engine) as s:
        if search.dialect(s) != "sqlite":
            assert search.reindex_all(s) == 0
            return
        s.execute(text("DELETE FROM proposal_search"))
        assert search.reindex_all(s) == 1
        hits = s.execute(
            text("SELECT rowid FROM proposal_search WHERE proposal_search MATCH :m"), {"m": '"licht"'}
        )
        assert len(hits.all()) == 1
