"""The staff statistics dashboard (voting/stats.py, /staff/statistics): counts of participants,
proposals, comments, supports and ballots, per day, per theme and per district, as SVG charts and tables;
only public content is counted and no personal data is shown."""

from __future__ import annotations

import datetime as dt
import re

from app.database import new_session
from app.models import Role
from proposals.models import Support
from tests.proposals.factories import make_comment, make_proposal
from tests.voting.test_admin_processes import mount_staff
from tests.voting.test_ballots import district_id
from tests.voting.test_results import voted_process
from voting import stats


def test_dashboard_counts_only_public_content(db, app, make_user):
    author = make_user(name="Sichtbar Niemals")
    a = make_proposal(db, author, theme_slug="energie-umwelt", district_id=district_id(db, "barmen"))
    make_proposal(db, author, theme_slug="energie-umwelt")
    draft = make_proposal(db, author, status="draft")
    make_comment(db, a, author)
    make_comment(db, a, author, deleted_at=a.created_at)
    make_comment(db, draft, author)
    with new_session(db.engine) as s:
        s.add(Support(proposal_id=a.id, user_id=author.id))
        s.add(Support(proposal_id=draft.id, user_id=author.id))
        s.commit()
    voted_process(db, app, make_user)
    with new_session(db.engine) as s:
        data = stats.dashboard(s, locale="de")
    assert (data.proposals, data.comments, data.supports, data.ballots) == (2, 1, 1, 10)
    assert data.participants == 11
    assert dict(data.per_theme)["Energie und Umwelt"] == 2
    per_district = dict(data.per_district)
    assert per_district["Barmen"] == 1 and sum(per_district.values()) == 2
    assert sum(n for _d, n in data.ballots_per_day) == 10
    days = [d for d, _n in data.ballots_per_day]
    assert days == sorted(days) and all(
        b - a == dt.timedelta(days=1) for a, b in zip(days, days[1:], strict=False)
    )


def test_statistics_page_has_charts_and_tables(db, app, client, make_user, login):
    mount_staff(app)
    author = make_user(name="Sichtbar Niemals", email="privat@example.org")
    make_proposal(db, author, title="<script>x</script>")
    voted_process(db, app, make_user)
    login(make_user(Role.STAFF))
    r = client.get("/staff/statistics")
    assert r.status_code == 200
    svgs = re.findall(r"<svg[^>]*role=\"img\"[^>]*>.*?</svg>", r.text, re.S)
    assert len(svgs) == 3 and all("<title" in s and "<desc" in s for s in svgs)
    assert "polyline" in svgs[0] or "circle" in svgs[0]
    assert r.text.count("<table") == 3
    assert (
        "Sichtbar Niemals" not in r.text and "privat@example.org" not in r.text and "<script>x" not in r.text
    )
    dashboard = client.get("/staff")
    assert dashboard.status_code == 200 and "Bürgerbudget Test" in dashboard.text
