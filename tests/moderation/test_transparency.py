"""The public transparency report (counts per month, ground and outcome, no personal data) and the CSV
export for staff."""

from __future__ import annotations

import csv
import io

from tests.moderation.conftest import decide, hide_item
from tests.proposals.factories import make_comment, make_proposal


def _some_decisions(db, client, make_user, login):
    proposal = make_proposal(db, make_user())
    c1 = make_comment(db, proposal, make_user(name="Geheimer Name"))
    c2 = make_comment(db, proposal, make_user())
    client.post_form(f"/report/comment/{c1.id}", {"category": "insult", "explanation": ""})
    login(make_user("moderator", name="Moderatorin Mia"))
    hide_item(client, db, "comment", c1.id, statement="Beleidigung")
    hide_item(client, db, "comment", c2.id, statement="Beleidigung")
    decide(client, "proposal", proposal.id, action="dismiss")
    client.post_form("/logout")


def test_public_counts_per_month_ground_outcome(db, client, make_user, login):
    """Anyone sees aggregated counts; no names of authors or moderators."""
    _some_decisions(db, client, make_user, login)
    page = client.get("/transparency").text
    assert "§ 185 StGB Beleidigung" in page
    assert "Geheimer Name" not in page and "Moderatorin Mia" not in page
    assert "/transparency.csv" not in page  # the export link is for staff


def test_staff_export_csv(db, client, make_user, login):
    """Staff download the counts as CSV (Content-Disposition attachment, no-store)."""
    _some_decisions(db, client, make_user, login)
    login(make_user("staff"))
    r = client.get("/transparency.csv")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert "attachment" in r.headers["content-disposition"] and r.headers["cache-control"] == "no-store"
    rows = list(csv.reader(io.StringIO(r.text)))
    assert rows[0] == ["kind", "month", "ground_or_category", "outcome", "count"]
    decisions = {(row[2], row[3]): int(row[4]) for row in rows[1:] if row[0] == "decision"}
    assert decisions == {("stgb-185", "hide"): 2, ("none", "dismiss"): 1}
    reports = [row for row in rows[1:] if row[0] == "report"]
    assert [(r_[2], r_[4]) for r_ in reports] == [("insult", "1")]
