"""Importing projects from CSV and XLSX (preview, per-row problems, all or nothing) and archived votes from
pabulib files (voting/imports.py through /staff/processes/...)."""

from __future__ import annotations

import base64
import io
import re
from pathlib import Path

import pytest
from openpyxl import Workbook

from tests.conftest import query
from tests.voting.test_admin_processes import staff, staff_app  # noqa: F401  (fixtures)
from tests.voting.test_ballots import district_id, make_process, theme_id
from voting.models import Ballot, Process, Project, TallyRun

SAMPLES = Path(__file__).resolve().parents[1] / "fixtures" / "pb-samples"
GOOD_CSV = (
    "id;Titel;Beschreibung;Kosten;Themenfeld;Stadtbezirk;Machbarkeit\n"
    "A1;Blühwiesen;Mehr *Insekten*;12.500,00;energie-umwelt;Barmen;machbar\n"
    'A2;"Bänke; bequem";;3000;Jugend und Familie;;\n'
)


def upload(client, process, content: bytes, name: str = "projekte.csv"):
    return client.post(
        f"/staff/processes/{process.id}/projects/import",
        data={"csrf_token": client.csrf("/")},
        files={"file": (name, content, "application/octet-stream")},
    )


def confirm(client, preview_html: str, process):
    payload = re.search(r'name="payload" value="([^"]+)"', preview_html).group(1)
    name = re.search(r'name="filename" value="([^"]*)"', preview_html).group(1)
    return client.post_form(
        f"/staff/processes/{process.id}/projects/import",
        {"payload": payload, "filename": name, "confirm": "1"},
    )


@pytest.mark.parametrize("bom", [b"", b"\xef\xbb\xbf"])
def test_csv_import_previews_then_imports_every_row(db, client, staff, bom):  # noqa: F811
    """A correct UTF-8 file (with or without BOM, ; separated, quoted cells): preview first, nothing
    written; after confirming every row is a project with cost in cents, theme and district."""
    process = make_process(db, phase="preparation", projects=[])
    r = upload(client, process, bom + GOOD_CSV.encode("utf-8"))
    assert r.status_code == 200
    assert "Blühwiesen" in r.text and "Bänke; bequem" in r.text and query(db, Project) == []
    r = confirm(client, r.text, process)
    assert r.status_code == 303, r.text
    rows = sorted(query(db, Project), key=lambda p: p.position)
    assert [(p.title, p.cost_cents) for p in rows] == [("Blühwiesen", 12_500_00), ("Bänke; bequem", 3_000_00)]
    assert rows[0].theme_id == theme_id(db, "energie-umwelt") and rows[0].district_id == district_id(
        db, "barmen"
    )
    assert rows[1].theme_id == theme_id(db, "jugend-familie") and rows[1].district_id is None
    assert rows[0].feasibility_notes == "machbar" and "<em>Insekten</em>" in rows[0].description_html


def test_xlsx_import(db, client, staff):  # noqa: F811
    """An XLSX workbook (numbers as numeric cells) imports the same way."""
    process = make_process(db, phase="preparation", projects=[])
    wb = Workbook()
    ws = wb.active
    ws.append(["title", "cost", "district"])
    ws.append(["Trinkbrunnen", 48000, "elberfeld"])
    ws.append(["Beleuchtung", 7500.5, None])
    buf = io.BytesIO()
    wb.save(buf)
    r = upload(client, process, buf.getvalue(), "projekte.xlsx")
    assert r.status_code == 200 and "Trinkbrunnen" in r.text
    assert confirm(client, r.text, process).status_code == 303
    assert sorted((p.title, p.cost_cents) for p in query(db, Project)) == [
        ("Beleuchtung", 7_500_50),
        ("Trinkbrunnen", 48_000_00),
    ]


BAD_FILES = [
    ("wrong columns", b"name;price\nA;1\n", [1], "unbekannte Spalten: name, price"),
    ("missing cost column", b"title;theme\nA;x\n", [1], "fehlende Spalten: cost"),
    ("latin-1", "title;cost\nGrünfläche;100\n".encode("latin-1"), [2], "UTF-8"),
    (
        "bad costs",
        b"title;cost\nA;-100\nB;teuer\nC;\nD;1.000,00\n",
        [2, 3, 4],
        "Zeile 3: die Kosten „teuer“ sind keine Zahl",
    ),
    (
        "unknown theme and district",
        b"title;cost;theme;district\nA;1;Raumfahrt;\nB;1;;Atlantis\n",
        [2, 3],
        "Atlantis",
    ),
    ("duplicate ids", b"id;title;cost\n7;A;1\n8;B;2\n7;C;3\n", [4], "bereits in Zeile 2"),
    ("empty", b"", [0], ""),
    ("not xlsx", b"PK\x03\x04garbage", [0], "XLSX"),
]


@pytest.mark.parametrize("name,content,rows,text", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_files_report_each_row_and_import_nothing(db, client, staff, name, content, rows, text):  # noqa: F811
    """Wrong columns, wrong encoding, negative/non-numeric/missing costs, unknown themes or districts,
    duplicate ids: 400, every problem named with its row, nothing imported, no confirm button."""
    process = make_process(db, phase="preparation", projects=[])
    r = upload(client, process, content)
    assert r.status_code == 400
    assert sorted(int(x) for x in re.findall(r'data-row="(\d+)"', r.text)) == rows
    assert text in r.text
    assert 'name="payload"' not in r.text
    assert query(db, Project) == []


def test_a_tampered_confirmation_is_checked_again(db, client, staff):  # noqa: F811
    """The confirmation re-validates the file it carries: a bad payload imports nothing."""
    process = make_process(db, phase="preparation", projects=[])
    bad = base64.b64encode(b"title;cost\nA;-1\n").decode()
    r = client.post_form(
        f"/staff/processes/{process.id}/projects/import",
        {"payload": bad, "filename": "x.csv", "confirm": "1"},
    )
    assert r.status_code == 400 and query(db, Project) == []
    r = client.post_form(
        f"/staff/processes/{process.id}/projects/import",
        {"payload": "%%%", "filename": "x.csv", "confirm": "1"},
    )
    assert r.status_code == 400 and query(db, Project) == []


def test_import_refused_after_the_freeze(db, client, staff):  # noqa: F811
    process = make_process(db, phase="voting")
    before = len(query(db, Project))
    r = upload(client, process, GOOD_CSV.encode())
    preview = r.text
    assert 'name="payload"' not in preview  # the form is gone once frozen
    payload = base64.b64encode(GOOD_CSV.encode()).decode()
    r = client.post_form(
        f"/staff/processes/{process.id}/projects/import",
        {"payload": payload, "filename": "x.csv", "confirm": "1"},
    )
    assert r.status_code == 400 and len(query(db, Project)) == before


def test_pabulib_archive_import_stores_projects_ballots_and_results(db, client, staff):  # noqa: F811
    """A pabulib election becomes an archived, published process whose tally equals the reference."""
    raw = (SAMPLES / "Poland_Zabrze_2020_Zandka.pb").read_bytes()
    r = client.post(
        "/staff/processes/import-pb",
        data={"csrf_token": client.csrf("/"), "rule": "greedy"},
        files={"file": ("zandka.pb", raw, "text/plain")},
    )
    assert r.status_code == 303, r.text
    (process,) = query(db, Process)
    assert process.budget_cents == 150_000_00 and process.results_published_at is not None
    assert len(query(db, Ballot)) == 155
    projects = {p.id: p.title for p in query(db, Project)}
    (run,) = query(db, TallyRun)
    page = client.get(r.headers["location"])
    assert page.status_code == 200
    assert "Nowy plac zabaw na Zandce" in page.text
    assert client.get(f"/processes/{process.id}").status_code == 200  # the public process page works too
    import json

    selected = [projects[pid] for pid in json.loads(run.result)["selected"]]
    assert selected == [
        "Nowy plac zabaw na Zandce",
        "Oświetlenie tradycyjne",
    ]  # greedy reference: P0097, P0015


def test_bad_pabulib_file_is_refused(db, client, staff):  # noqa: F811
    r = client.post(
        "/staff/processes/import-pb",
        data={"csrf_token": client.csrf("/")},
        files={"file": ("x.pb", b"META\nkey;value\nbudget;abc\n", "text/plain")},
    )
    assert r.status_code == 400 and "line" in r.text
    assert query(db, Process) == []
