"""The results page (public once published, staff before), its accessible SVG chart with a table, the
per-project explanations of the Method of Equal Shares, turnout per district, the printable view, and
the staff comparison of every applicable rule (voting/results.py, charts.py, admin_routes.py)."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from app.database import new_session, utcnow
from app.models import Role
from tests.voting.test_admin_processes import mount_staff
from tests.voting.test_ballots import cast, close, make_process, project_ids, reload, set_district
from voting import charts, lifecycle
from voting.models import Process

# Greedy funds A and C (most votes); the Method of Equal Shares funds C and B: A's six supporters hold
# 60 € of the budget, too little for A's 70 €.
ELECTION = [("A Radweg", 70_00, None, None), ("B Bänke", 40_00, None, None), ("C Bäume", 30_00, None, None)]
VOTES = [[0, 2]] * 6 + [[1]] * 4
XSS = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    '=HYPERLINK("http://evil";"x")',
    "+SUM(1;2)",
    "-2+3",
    "@cmd",
]


def voted_process(
    db,
    app,
    make_user,
    *,
    projects=ELECTION,
    votes=VOTES,
    budget_cents=100_00,
    rule="greedy",
    publish=True,
    **fields,
) -> Process:
    """A process in which len(votes) residents voted (project indexes per voter), closed and tallied."""
    now = utcnow() - dt.timedelta(hours=2)
    process = make_process(db, projects=projects, budget_cents=budget_cents, rule=rule, now=now, **fields)
    ids = project_ids(db, process)
    for k, picks in enumerate(votes):
        voter = make_user(email=f"v{process.id}-{k}@example.org")
        cast(db, app, process, voter, [ids[i] for i in picks])
    close(db, process, now=utcnow() - dt.timedelta(minutes=1))
    lifecycle.run_tally(db.engine, process_id=process.id)
    if publish:
        with new_session(db.engine, write=True) as s:
            lifecycle.publish_results(s, process=s.get(Process, process.id))
            s.commit()
    return reload(db, process)


@pytest.fixture(autouse=True)
def _routes(app):
    mount_staff(app)


def test_published_results_page_with_chart_and_table(db, app, client, make_user):
    """Anyone sees published results: funded and unfunded projects, votes, cost, share of budget, an SVG
    chart with role=img, <title> and <desc>, the same numbers as a table, and the tie-breaking rule."""
    process = voted_process(db, app, make_user)
    r = client.get(f"/processes/{process.id}/results")
    assert r.status_code == 200
    svg = re.search(r"<svg[^>]*>.*?</svg>", r.text, re.S).group(0)
    assert 'role="img"' in svg and "<title id=" in svg and "<desc id=" in svg and "aria-labelledby" in svg
    assert svg.count('class="bar funded"') == 2 and svg.count('class="bar"') == 1
    table = r.text.split('class="data results-table"')[1].split("</table>")[0]
    rows = re.findall(
        r'<tr class="(funded|unfunded)">\s*<th scope="row">([^<]+)</th>\s*<td class="num">(\d+)</td>', table
    )
    assert rows == [("funded", "A Radweg", "6"), ("funded", "C Bäume", "6"), ("unfunded", "B Bänke", "4")]
    assert "70 %" in table or "70,0 %" in table
    assert "?print=1" in r.text
    printable = client.get(f"/processes/{process.id}/results?print=1")
    assert printable.status_code == 200 and "printable" in printable.text


def test_unpublished_results_only_for_staff(db, app, client, make_user, login):
    """Before publication the results page is 404 for the public and residents, and marked for staff."""
    process = voted_process(db, app, make_user, publish=False)
    assert client.get(f"/processes/{process.id}/results").status_code == 404
    login(make_user(Role.RESIDENT))
    assert client.get(f"/processes/{process.id}/results").status_code == 404
    assert client.get(f"/processes/{process.id}/export.pb").status_code == 404
    login(make_user(Role.STAFF))
    r = client.get(f"/processes/{process.id}/results")
    assert r.status_code == 200 and "A Radweg" in r.text and "flash-info" in r.text


def test_equal_shares_explains_why(db, app, client, make_user):
    """MES: a funded project names its payers and price; an unfunded one its supporters' share of the
    budget, what they had left and what it would have needed."""
    process = voted_process(db, app, make_user, rule="mes")
    r = client.get(f"/processes/{process.id}/results")
    table = r.text.split('class="data results-table"')[1].split("</table>")[0]
    funded = re.findall(r'<tr class="funded">\s*<th scope="row">([^<]+)</th>', table)
    assert funded == ["C Bäume", "B Bänke"]
    row_a = table.split("A Radweg")[1].split("</tr>")[0]
    # six of ten voters: 60 € of the 100 € budget; they paid 30 € for C, so 30 € left; A needs 40 € more
    assert "60,00" in row_a and "30,00" in row_a and "40,00" in row_a
    row_b = table.split("B Bänke")[1].split("</tr>")[0]
    assert "4" in row_b and "10,00" in row_b


def test_turnout_per_district(db, app, client, make_user):
    """With district ballots, turnout is shown per ballot next to the registered residents."""
    from tests.voting.test_ballots import district_id

    process = make_process(
        db,
        projects=[("Stadt", 50_00, None, None), ("Barmen", 10_00, "barmen", None)],
        budget_cents=100_00,
        district_budgets={"barmen": 20_00},
        now=utcnow() - dt.timedelta(hours=1),
    )
    barmen = district_id(db, "barmen")
    city, local = project_ids(db, process, 0), project_ids(db, process, barmen)
    for k in range(4):
        voter = set_district(db, make_user(email=f"b{k}@example.org"), "barmen")
        cast(db, app, process, voter, city)
        if k < 2:
            cast(db, app, process, voter, local, scope=barmen)
    close(db, process)
    lifecycle.run_tally(db.engine, process_id=process.id)
    with new_session(db.engine, write=True) as s:
        lifecycle.publish_results(s, process=s.get(Process, process.id))
        s.commit()
    r = client.get(f"/processes/{process.id}/results")
    turnout = r.text.split('id="turnout-h"')[1].split("</table>")[0]
    assert re.search(
        r"Barmen</th><td class=\"num\">2</td>\s*<td class=\"num\">4</td>\s*<td class=\"num\">50", turnout
    )


def test_xss_in_titles_is_escaped_on_the_results_page(db, app, client, make_user):
    """SECURITY.md V5.3: titles are user input; the page and the SVG escape them."""
    projects = [(title, 10_00, None, None) for title in XSS]
    process = voted_process(db, app, make_user, projects=projects, votes=[[0, 1, 2], [3, 4, 5]])
    r = client.get(f"/processes/{process.id}/results")
    assert "<script>alert(1)" not in r.text and "<img src=x" not in r.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in r.text


def test_bar_chart_escapes_and_scales():
    svg = str(charts.bar_chart("T<", "D&", [charts.Bar("<b>", 10, True), charts.Bar("x", 5)]))
    assert "<b>" not in svg and "&lt;b&gt;" in svg and "T&lt;" in svg and "D&amp;" in svg
    widths = [float(w) for w in re.findall(r'<rect class="[^"]+" x="\d+" y="[\d.]+" width="([\d.]+)"', svg)]
    assert widths[0] == pytest.approx(2 * widths[1])


def test_comparison_of_rules_shows_which_projects_change(db, app, client, make_user, login):
    """Staff see the same ballots tallied with every applicable rule; A and B depend on the rule."""
    process = voted_process(db, app, make_user, publish=False)
    login(make_user(Role.STAFF))
    r = client.get(f"/staff/processes/{process.id}/compare")
    assert r.status_code == 200
    for rule in ("greedy", "mes", "mes-add1", "mes-add1-greedy", "phragmen"):
        assert f'<th scope="col">{rule}</th>' in r.text
    rows = dict(re.findall(r'<tr class="(changes|)">\s*<th scope="row">([^<]+)</th>', r.text)[::1])
    changes = {
        title
        for cls, title in re.findall(r'<tr class="(changes|)">\s*<th scope="row">([^<]+)</th>', r.text)
        if cls
    }
    assert changes == {"A Radweg", "B Bänke"} and rows
    open_process = make_process(db)
    r = client.get(f"/staff/processes/{open_process.id}/compare")
    assert r.status_code == 200 and "compare-table" not in r.text


def test_rule_comparison_is_cached_until_the_ballots_change(db, app, client, make_user, login, monkeypatch):
    """Reloading the comparison does not tally again; any change to the ballots (here: a paper ballot
    version bump) makes it tally afresh."""
    from sqlalchemy import update

    from voting import tally
    from voting.models import Ballot

    process = voted_process(db, app, make_user, publish=False)
    login(make_user(Role.STAFF))
    calls = []
    real = tally.tally_scope
    monkeypatch.setattr(tally, "tally_scope", lambda *a, **k: calls.append(k["rule"]) or real(*a, **k))

    def table() -> str:
        return client.get(f"/staff/processes/{process.id}/compare").text.split("compare-table")[1]

    first = table()
    assert len(calls) == 5
    assert table() == first and len(calls) == 5
    with new_session(db.engine, write=True) as s:
        s.execute(update(Ballot).where(Ballot.process_id == process.id).values(version=Ballot.version + 1))
        s.commit()
    client.get(f"/staff/processes/{process.id}/compare")
    assert len(calls) == 10


def test_cumulative_equal_shares_explains_without_vote_shares(db, app, client, make_user):
    """Point ballots: explanations name what supporters had left and what was missing, but no starting
    share computed from votes (which only holds for one vote per supporter); the pb export has points."""
    now = utcnow() - dt.timedelta(hours=1)
    process = make_process(
        db, ballot_type="cumulative", projects=ELECTION, budget_cents=100_00, rule="mes", now=now
    )
    a, b, c = project_ids(db, process)
    for k in range(4):
        voter = make_user(email=f"cum{k}@example.org")
        cast(db, app, process, voter, {str(a): 5, str(c): 5} if k < 3 else {str(b): 5})
    close(db, process)
    lifecycle.run_tally(db.engine, process_id=process.id)
    with new_session(db.engine, write=True) as s:
        lifecycle.publish_results(s, process=s.get(Process, process.id))
        s.commit()
    r = client.get(f"/processes/{process.id}/results")
    assert r.status_code == 200
    table = r.text.split('class="data results-table"')[1].split("</table>")[0]
    assert "anfangs" not in table and "Nicht gefördert" in table
    pb = client.get(f"/processes/{process.id}/export.pb").text
    assert "vote_type;cumulative" in pb and "voter_id;vote;points" in pb and f"{a},{c};5,5" in pb
