"""Exports (voting/exports.py over HTTP): results as CSV (UTF-8 BOM, comma or semicolon), XLSX (typed
cells, header row), JSON and pabulib (read back by pabutools), compared with golden files; the public .pb
after publication; proposals and comments with filters and without anything hidden; formula injection
neutralised; no-store caching."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
import re
from fractions import Fraction
from pathlib import Path

import pytest
from openpyxl import load_workbook

from app.database import new_session, utcnow
from app.models import Role
from proposals.models import Proposal
from tests.proposals.factories import make_comment, make_proposal
from tests.voting.test_admin_processes import mount_staff
from tests.voting.test_ballots import district_id, theme_id
from tests.voting.test_results import ELECTION, XSS, voted_process
from voting import exports

GOLDEN = Path(__file__).parent / "golden_exports"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"


@pytest.fixture(autouse=True)
def _routes(app):
    mount_staff(app)


@pytest.fixture
def staff_client(client, make_user, login):
    login(make_user(Role.STAFF))
    return client


def _normalise(text: str, process) -> str:
    """Replace what differs between runs (slug, dates) by placeholders. Ids are the same on every run and
    backend: each test starts from emptied tables with reset sequences."""
    text = text.replace(process.slug, "SLUG")
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "TIMESTAMP", text)
    text = re.sub(r"\d\d\.\d\d\.\d{4}", "DD.MM.YYYY", text)
    return re.sub(r"instance;\d{4}", "instance;YYYY", text)


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE or not path.exists():
        GOLDEN.mkdir(exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    assert text == path.read_bytes().decode("utf-8"), f"{name} differs from the golden file"


@pytest.fixture
def election(db, app, make_user):
    process = voted_process(db, app, make_user, rule="mes")
    return process


def test_results_csv_with_bom_both_separators_and_golden(db, staff_client, election):
    """CSV: UTF-8 with BOM, a header row, one row per project; ';' on request; no caching."""
    r = staff_client.get(f"/staff/processes/{election.id}/export.csv")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    assert (
        r.headers["content-type"].startswith("text/csv") and "attachment" in r.headers["content-disposition"]
    )
    assert r.content.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(r.content.decode("utf-8-sig"))))
    assert rows[0] == list(exports.RESULT_HEADER)
    by_title = {row[2]: row for row in rows[1:]}
    assert set(by_title) == {t for t, *_ in ELECTION}
    assert by_title["C Bäume"][5:9] == ["30", "6", "1", "1"] and by_title["A Radweg"][7] == "0"
    assert by_title["B Bänke"][8] == "2" and by_title["B Bänke"][9] == "0.4"
    semi = staff_client.get(f"/staff/processes/{election.id}/export.csv?sep=semicolon")
    assert list(csv.reader(io.StringIO(semi.content.decode("utf-8-sig")), delimiter=";")) == rows
    golden("results.csv", _normalise(semi.content.decode("utf-8"), election))


def test_results_xlsx_typed_cells(db, staff_client, election):
    """XLSX: a bold header row, numbers as numbers, funded as booleans; the same rows as the CSV."""
    r = staff_client.get(f"/staff/processes/{election.id}/export.xlsx")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    wb = load_workbook(io.BytesIO(r.content))
    ws = wb.worksheets[0]
    rows = [[c.value for c in row] for row in ws.iter_rows()]
    assert rows[0] == list(exports.RESULT_HEADER) and ws.cell(1, 1).font.bold
    by_title = {row[2]: row for row in rows[1:]}
    c = by_title["C Bäume"]
    assert c[5] == 30 and c[6] == 6 and c[7] is True and c[8] == 1 and c[9] == pytest.approx(0.3)
    assert by_title["A Radweg"][7] is False and isinstance(by_title["A Radweg"][1], int)
    csv_rows = list(
        csv.reader(
            io.StringIO(
                staff_client.get(f"/staff/processes/{election.id}/export.csv").content.decode("utf-8-sig")
            )
        )
    )
    assert [str(row[2]) for row in rows[1:]] == [row[2] for row in csv_rows[1:]]


def test_results_json_golden(db, staff_client, election):
    r = staff_client.get(f"/staff/processes/{election.id}/export.json")
    data = json.loads(r.content)
    (ballot,) = data["ballots"]
    assert ballot["rule"] == "mes" and ballot["cost_cents"] == 70_00 and ballot["ballots"] == 10
    titles = {p["id"]: p["title"] for p in ballot["projects"]}
    assert [titles[i] for i in ballot["selected"]] == ["C Bäume", "B Bänke"]
    golden("results.json", _normalise(r.content.decode("utf-8"), election))


def test_pb_export_is_read_back_by_pabutools(db, client, election, tmp_path):
    """The public .pb export (after publication): pabutools parses it, with the same projects, budget
    and ballots; voters are numbered 1..n (no account or ballot identifiers)."""
    from pabutools.election import parse_pabulib

    r = client.get(f"/processes/{election.id}/export.pb")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    text = r.content.decode("utf-8")
    path = tmp_path / "export.pb"
    path.write_text(text, encoding="utf-8")
    instance, profile = parse_pabulib(str(path))
    assert instance.budget_limit == 100 and len(instance) == 3
    assert sorted(p.cost for p in instance) == [30, 40, 70]
    assert len(profile) == 10
    ids = {p.name for p in instance}
    assert sum(1 for ballot in profile for _p in ballot) == 16 and all(
        {p.name for p in b} <= ids for b in profile
    )
    votes = text.split("VOTES\n")[1].splitlines()[1:]
    assert [line.split(";")[0] for line in votes] == [str(n) for n in range(1, 11)]
    golden("results.pb", _normalise(_sorted_votes(text), election))
    # and our own reader re-tallies it to the same result
    from voting.pabulib import read_pabulib
    from voting.rules import tally

    result = tally("mes", read_pabulib(text.encode()).profile)
    assert result.cost == Fraction(70)


def _sorted_votes(text: str) -> str:
    """Votes are ordered by random ballot ids: sort them for the golden file."""
    head, votes = text.split("VOTES\n")
    lines = votes.splitlines()
    body = sorted(line.split(";", 1)[1] for line in lines[1:])
    return head + "VOTES\n" + lines[0] + "\n" + "\n".join(f"N;{b}" for b in body) + "\n"


def test_csv_formula_injection_and_xss_in_exports(db, app, staff_client, make_user):
    """Cells starting with = + - @ are prefixed with ' in CSV and XLSX; HTML is kept as text (exports are
    attachments, never rendered)."""
    projects = [(title, 10_00, None, None) for title in XSS]
    process = voted_process(db, app, make_user, projects=projects, votes=[[0, 1, 2], [3, 4, 5]])
    rows = list(
        csv.reader(
            io.StringIO(
                staff_client.get(f"/staff/processes/{process.id}/export.csv").content.decode("utf-8-sig")
            )
        )
    )
    titles = {row[2] for row in rows[1:]}
    assert titles == {
        "<script>alert(1)</script>",
        '"><img src=x onerror=alert(1)>',
        '\'=HYPERLINK("http://evil";"x")',
        "'+SUM(1;2)",
        "'-2+3",
        "'@cmd",
    }
    wb = load_workbook(io.BytesIO(staff_client.get(f"/staff/processes/{process.id}/export.xlsx").content))
    xtitles = {row[2].value for row in wb.worksheets[0].iter_rows(min_row=2)}
    assert xtitles == titles
    assert all(not str(t).startswith(("=", "+", "-", "@")) for t in xtitles)


def test_staff_export_before_publication_public_pb_not(db, app, client, make_user, login):
    process = voted_process(db, app, make_user, publish=False)
    assert client.get(f"/processes/{process.id}/export.pb").status_code == 404
    login(make_user(Role.ADMIN))
    r = client.get(f"/staff/processes/{process.id}/export.pb")
    assert r.status_code == 200 and "num_votes;10" in r.text


def test_proposal_and_comment_exports_filter_and_hide(db, staff_client, make_user):
    """Only public proposals (no drafts) and their visible comments; filters by theme, district, status
    and date; deleted comments without text; no author names or e-mail addresses."""
    author = make_user(email="geheim@example.org", name="Geheime Person")
    barmen = district_id(db, "barmen")
    a = make_proposal(db, author, title="Bänke", theme_slug="energie-umwelt", district_id=barmen)
    b = make_proposal(db, author, title="=Formel", theme_slug="jugend-familie", status="accepted")
    make_proposal(db, author, title="Entwurf", status="draft")
    make_comment(db, a, author, "Sichtbar")
    make_comment(db, a, author, "Gelöscht", deleted_at=utcnow())
    d = make_proposal(db, author, title="Entwurf mit Kommentar", status="draft")
    make_comment(db, d, author, "Versteckt")

    def rows(path):
        r = staff_client.get(path)
        assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
        assert b"geheim@example.org" not in r.content and b"Geheime Person" not in r.content
        return list(csv.DictReader(io.StringIO(r.content.decode("utf-8-sig"))))

    assert sorted(r["title"] for r in rows("/staff/exports/proposals.csv")) == ["'=Formel", "Bänke"]
    assert [
        r["title"] for r in rows(f"/staff/exports/proposals.csv?theme={theme_id(db, 'energie-umwelt')}")
    ] == ["Bänke"]
    assert [r["title"] for r in rows(f"/staff/exports/proposals.csv?district={barmen}")] == ["Bänke"]
    assert [r["title"] for r in rows("/staff/exports/proposals.csv?status=accepted")] == ["'=Formel"]
    assert rows("/staff/exports/proposals.csv?from=2000-01-01&to=2000-12-31") == []
    comments = rows("/staff/exports/comments.csv")
    assert sorted((c["text"], c["deleted"]) for c in comments) == [("", "1"), ("Sichtbar", "0")]
    assert rows(f"/staff/exports/comments.csv?district={barmen}&from=2000-01-01") and not rows(
        "/staff/exports/comments.csv?status=accepted"
    )
    r = staff_client.get("/staff/exports/proposals.xlsx?theme=")
    wb = load_workbook(io.BytesIO(r.content))
    assert sorted(row[1].value for row in wb.worksheets[0].iter_rows(min_row=2)) == ["'=Formel", "Bänke"]
    first = next(wb.worksheets[0].iter_rows(min_row=2))
    assert isinstance(first[0].value, int) and isinstance(first[9].value, dt.datetime)  # typed: id, date
    assert wb.worksheets[0].cell(1, 1).font.bold
    assert staff_client.get("/staff/exports/proposals.csv?from=gestern").status_code == 400
    assert staff_client.get("/staff/exports/proposals.csv?status=secret").status_code == 400
    with new_session(db.engine) as s:
        assert s.get(Proposal, b.id).status == "accepted"
