"""Named permissions of the council staff pages: process administration, results before publication
and comparison, exports and statistics. Staff and admins only (moderators and residents get 403)."""

from __future__ import annotations

from app.permissions import is_staff, register

staff_or_admin = is_staff  # the staff role and admins

register(
    "staff.processes", staff_or_admin, "Staff: create and edit processes and their projects, import projects"
)
register(
    "staff.results", staff_or_admin, "Staff: results before publication and the comparison of tally rules"
)
register("staff.exports", staff_or_admin, "Staff: export results, projects, proposals and comments")
register("staff.statistics", staff_or_admin, "Staff: the statistics dashboard (aggregates, no personal data)")
