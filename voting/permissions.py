"""Named permissions for participatory-budget votes, built from small predicates over (user, object).

Objects: a :class:`~voting.models.Process`, a :class:`CastTarget` (process + ballot scope) or a
:class:`PaperTarget` (process + paper ballot). Phase rules are part of the predicates, so the same check
answers "may this person do this now?" in routes (``require``) and templates (``can``):

- ``voting.cast``: an eligible signed-in account (``voting.ballots.eligibility_problems``), in the
  city-wide ballot or the ballot of its profile district, while voting is open;
- ``voting.manage``: staff and admins, always (each lifecycle step checks its own phase);
- ``voting.paper.enter``: staff and admins while voting is open;
- ``voting.paper.confirm``: staff and admins while voting is open, never the person who entered that
  paper ballot (four eyes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from app.models import User
from app.permissions import all_of, is_authenticated, is_staff, register
from voting.ballots import eligibility_problems, scope_allowed
from voting.lifecycle import is_voting_open
from voting.models import PaperBallot, Process


@dataclass(frozen=True)
class CastTarget:
    """One ballot of a process: scope 0 is the city-wide ballot, otherwise a district id."""

    process: Process
    scope: int = 0


@dataclass(frozen=True)
class PaperTarget:
    process: Process
    paper: PaperBallot | None = None


def _process(obj: Any) -> Process | None:
    if isinstance(obj, Process):
        return obj
    if isinstance(obj, CastTarget | PaperTarget):
        return obj.process
    return None


def voting_is_open(_user: User | None, obj: Any = None) -> bool:
    process = _process(obj)
    return process is not None and is_voting_open(process)


def is_eligible_voter(user: User | None, obj: Any = None) -> bool:
    process = _process(obj)
    return process is not None and user is not None and not eligibility_problems(process, user)


def may_use_scope(user: User | None, obj: Any = None) -> bool:
    """The city-wide ballot, or the ballot of the voter's own profile district (if the process has them)."""
    if isinstance(obj, Process):
        return True
    return isinstance(obj, CastTarget) and user is not None and scope_allowed(obj.process, user, obj.scope)


def is_second_person(user: User | None, obj: Any = None) -> bool:
    """Four eyes: whoever entered a paper ballot cannot confirm it."""
    if not isinstance(obj, PaperTarget) or obj.paper is None:
        return isinstance(obj, Process | PaperTarget)
    return user is not None and obj.paper.entered_by_id != user.id


can_cast = all_of(is_authenticated, voting_is_open, is_eligible_voter, may_use_scope)
can_manage = is_staff
can_enter_paper = all_of(is_staff, voting_is_open)
can_confirm_paper = all_of(is_staff, voting_is_open, is_second_person)

register("voting.cast", can_cast, "Cast or change one's own ballot while voting is open (eligible residents)")
register(
    "voting.manage",
    can_manage,
    "Staff: pre-flight check, open and close voting, tally, publish, destroy links",
)
register("voting.paper.enter", can_enter_paper, "Staff: enter paper ballots while voting is open")
register(
    "voting.paper.confirm",
    can_confirm_paper,
    "Staff: confirm (or reject) a paper ballot someone else entered, while voting is open",
)
