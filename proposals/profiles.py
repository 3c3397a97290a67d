"""Public profile pages: who someone is on the platform, in public terms only.

``/users/{id}`` shows the display name, the month the account was created, the numbers of shown proposals
and comments, and the account's public proposals, with a link to report the profile (DSA Art. 16). It shows
no e-mail, district, role or sanction, and a deleted account has no page (404). Everything listed goes
through the one visibility rule (``public_proposal``/``public_comment``), so hidden or pending content never
appears here either.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlmodel import Session
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.models import User
from app.web import render, view
from proposals.listing import Card
from proposals.models import Comment, District, Proposal, Theme
from proposals.visibility import public_comment, public_proposal

PROFILE_PROPOSALS = 20


@dataclass(frozen=True)
class Profile:
    user: User
    proposal_count: int
    comment_count: int
    proposals: list[Card]


def public_profile(db: Session, *, user_id: int) -> Profile | None:
    user = db.get(User, user_id)
    if user is None or user.is_deleted:
        return None
    proposal_count = db.execute(
        select(func.count(Proposal.id)).where(Proposal.author_id == user_id, public_proposal())
    ).scalar_one()
    comment_count = db.execute(
        select(func.count(Comment.id))
        .join(Proposal, Proposal.id == Comment.proposal_id)
        .where(
            Comment.author_id == user_id, Comment.deleted_at.is_(None), public_comment(), public_proposal()
        )
    ).scalar_one()
    rows = db.execute(
        select(Proposal, Theme, District)
        .join(Theme, Theme.id == Proposal.theme_id)
        .outerjoin(District, District.id == Proposal.district_id)
        .where(Proposal.author_id == user_id, public_proposal())
        .order_by(Proposal.published_at.desc(), Proposal.id.desc())
        .limit(PROFILE_PROPOSALS)
    ).all()
    return Profile(user, proposal_count, comment_count, [Card(*row) for row in rows])


@view
def profile_page(request: Request, db: Session) -> Response:
    profile = public_profile(db, user_id=request.path_params["user_id"])
    if profile is None:
        raise HTTPException(404)
    return render(request, "proposals/profile.html", profile=profile, shown=PROFILE_PROPOSALS)


routes = [Route("/users/{user_id:int}", profile_page, name="profile")]
