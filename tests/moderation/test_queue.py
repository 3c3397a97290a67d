"""The queue: open reports grouped by item with counts and categories, sortable by age and count (allowlisted),
filterable by type and theme area, paginated; the item page shows the context and the author's history."""

from __future__ import annotations

import re

from sqlalchemy import select

from app.database import new_session
from moderation import queue
from proposals.models import Theme
from tests.moderation.conftest import file_flags
from tests.proposals.factories import make_comment, make_proposal


def _flags(db, item_type, item_id, n, category="spam", age_days=0):
    file_flags(db, item_type, item_id, n, category=category, age_days=age_days)


def _order(html):
    return re.findall(r'<h3><a href="/moderation/items/(\w+)/(\d+)"', html)


def test_grouped_sorted_and_filtered(db, client, make_user, login):
    """Counts and categories per item; age and count sorts; type and theme filters; bad sort falls back."""
    author = make_user()
    with new_session(db.engine) as s:
        first_slug, second_slug = s.execute(
            select(Theme.slug).order_by(Theme.position, Theme.id).limit(2)
        ).scalars()
    p1 = make_proposal(db, author, theme_slug=first_slug)
    p2 = make_proposal(db, author, theme_slug=second_slug)
    other_theme = p2.theme_id
    c1 = make_comment(db, p2, author)
    _flags(db, "proposal", p1.id, 1, age_days=3)
    _flags(db, "proposal", p2.id, 3, age_days=1)
    _flags(db, "comment", c1.id, 1, category="insult", age_days=2)
    _flags(db, "comment", c1.id, 1, category="spam", age_days=2)
    login(make_user("moderator"))
    by_age = client.get("/moderation").text
    assert _order(by_age) == [("proposal", str(p1.id)), ("comment", str(c1.id)), ("proposal", str(p2.id))]
    assert "3 gemeldete Beiträge" in by_age or "3 reported items" in by_age
    by_count = client.get("/moderation?sort=count").text
    assert _order(by_count) == [("proposal", str(p2.id)), ("comment", str(c1.id)), ("proposal", str(p1.id))]
    assert _order(client.get("/moderation?sort=id;drop").text) == _order(by_age)
    assert _order(client.get("/moderation?type=comment").text) == [("comment", str(c1.id))]
    themed = _order(client.get(f"/moderation?theme={other_theme}").text)
    assert sorted(themed) == sorted([("proposal", str(p2.id)), ("comment", str(c1.id))])
    with new_session(db.engine) as s:
        entries, total = queue.queue(s, item_type="comment")
        assert total == 1 and entries[0].count == 2 and entries[0].categories == {"insult": 1, "spam": 1}


def test_pagination_total(db, make_user):
    """Pages of 50 groups; the total counts groups, not reports; a page past the end is empty."""
    author = make_user()
    proposals = [make_proposal(db, author, title=f"P{i}") for i in range(queue.PAGE_SIZE + 3)]
    for p in proposals:
        _flags(db, "proposal", p.id, 2)
    with new_session(db.engine) as s:
        first, total = queue.queue(s)
        second, total2 = queue.queue(s, page=2)
        beyond, total3 = queue.queue(s, page=5)
    assert (len(first), total, len(second), total2) == (queue.PAGE_SIZE, len(proposals), 3, len(proposals))
    assert beyond == [] and total3 == len(proposals)


def test_item_page_shows_context_and_history(db, client, make_user, login):
    """The item page shows the thread's proposal, the reports and the author's earlier decisions."""
    author = make_user(name="Karl Kommentar")
    proposal = make_proposal(db, make_user(), title="Radweg an der Talsohle")
    comment = make_comment(db, proposal, author, "Unsinn")
    _flags(db, "comment", comment.id, 1, category="off_topic")
    login(make_user("moderator"))
    page = client.get(f"/moderation/items/comment/{comment.id}").text
    assert "Radweg an der Talsohle" in page and "Unsinn" in page and "Karl Kommentar" in page
    assert client.get("/moderation/items/comment/99999").status_code == 404
    assert client.get("/moderation/items/ballot/1").status_code == 404
