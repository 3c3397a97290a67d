"""What the results page, the comparison view and the exports show, built from the stored tallies.

:func:`process_results` reads the tally of every ballot (scope) of a process: the published run (public),
or for staff before publication the newest finished run with the process's rule. Each project row has its
votes (score), cost, whether it was funded, its place in the selection order, its share of the budget and,
for the Method of Equal Shares, an explanation from the rule's figures:

- funded: how many supporters paid its price and what each paid;
- not funded: its supporters' share of the budget at the start (every voter starts with budget ÷ voters,
  so a project's supporters together hold votes × budget ÷ voters) and what they had left at the end —
  the difference to its cost is what it would have needed.

Turnout: ``VoterLink`` does not record a voter's district (ballot secrecy), and links are destroyed after
publication. Turnout per district is therefore the number of ballots cast in that district's own ballot
(scope), next to the number of registered accounts that name the district in their profile; the city-wide
ballot gives the overall figure.

:func:`compare_rules` tallies the same ballots with every rule that applies to the ballot type, for the
staff comparison view (which projects change with the rule).
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session

from app.i18n import gettext as _
from app.i18n import lazy
from app.models import User
from voting import lifecycle
from voting.lifecycle import VOTE_TYPE, Scope
from voting.models import Ballot, BallotType, Process, TallyRun
from voting.rules.registry import RULE_VOTE_TYPES
from voting.rules.result import DID_NOT_FIT, NO_VOTES, OVER_BUDGET, STOPPED, SUPPORTERS_SHORT

MES_RULES = ("mes", "mes-add1", "mes-add1-greedy")
REASONS = {
    NO_VOTES: lazy("nobody voted for it"),
    DID_NOT_FIT: lazy("it did not fit in the budget left"),
    SUPPORTERS_SHORT: lazy("its supporters' share of the budget was not enough"),
    STOPPED: lazy("the rule stopped before reaching it"),
    OVER_BUDGET: lazy("it costs more than the whole budget"),
}


def _int(value: Any) -> int | None:
    """A stored money figure (int cents, or an exact fraction as text) rounded to whole cents."""
    if value is None:
        return None
    return round(Fraction(value))


@dataclass
class ProjectResult:
    id: int
    title: str
    cost_cents: int
    score: Fraction
    funded: bool
    position: int | None
    reason: str | None
    theme_id: int | None = None
    district_id: int | None = None
    budget_share: Fraction = Fraction(0)  # cost ÷ budget of its ballot
    vote_share: Fraction = Fraction(0)  # supporters ÷ ballots
    explanation: str = ""
    supporters_budget_cents: int | None = None
    available_cents: int | None = None
    needed_cents: int | None = None
    price_cents: int | None = None
    payers: int | None = None
    stage: str | None = None

    @property
    def score_text(self) -> str:
        return str(self.score.numerator) if self.score.denominator == 1 else f"{float(self.score):.2f}"


@dataclass
class ScopeResult:
    scope: Scope
    rule: str
    ballots: int
    budget_cents: int
    cost_cents: int
    projects: list[ProjectResult] = field(default_factory=list)  # funded in selection order, then by votes
    published: bool = False
    registered: int | None = None  # accounts naming this district (district ballots only)

    @property
    def funded(self) -> list[ProjectResult]:
        return [p for p in self.projects if p.funded]

    @property
    def unfunded(self) -> list[ProjectResult]:
        return [p for p in self.projects if not p.funded]

    @property
    def leftover_cents(self) -> int:
        return self.budget_cents - self.cost_cents

    @property
    def turnout(self) -> Fraction | None:
        if not self.registered:
            return None
        return Fraction(self.ballots, self.registered)


def _explain(
    rule: str, row: dict[str, Any], p: ProjectResult, ballots: int, budget_cents: int, approval: bool
) -> str:
    """Why a project was (not) funded. The supporters' starting share (votes × budget ÷ voters) holds for
    approval ballots, where every supporter has one vote; for points it is left out."""
    is_mes = rule in MES_RULES and p.stage != "greedy"
    if ballots and rule in MES_RULES and approval:
        p.supporters_budget_cents = round(p.score * budget_cents / ballots)
    if p.funded:
        if is_mes and p.payers is not None and p.price_cents is not None:
            return _(
                "Funded: %(payers)s supporters paid %(price)s each from their equal share of the budget.",
                payers=p.payers,
                price=_fmt(p.price_cents),
            )
        if rule in MES_RULES and p.stage == "greedy":
            return _("Funded with the money left over after the Method of Equal Shares, by number of votes.")
        return _("Funded in place %(pos)s.", pos=p.position)
    if p.reason == "supporters-budget-insufficient" and p.available_cents is not None:
        if p.supporters_budget_cents is None:
            return _(
                "Not funded: its supporters had %(left)s left; it would have needed %(needed)s more.",
                left=_fmt(p.available_cents),
                needed=_fmt(p.needed_cents or 0),
            )
        return _(
            "Not funded: its supporters started with %(start)s of the budget and had %(left)s left; "
            "it would have needed %(needed)s more.",
            start=_fmt(p.supporters_budget_cents or 0),
            left=_fmt(p.available_cents),
            needed=_fmt(p.needed_cents or 0),
        )
    if p.reason == "did-not-fit" and p.needed_cents is not None:
        return _(
            "Not funded: it did not fit in the budget left; %(needed)s were missing.",
            needed=_fmt(p.needed_cents),
        )
    if p.reason:
        return _("Not funded: %(reason)s.", reason=_(REASONS.get(p.reason, p.reason)))
    return _("Not funded.")


def _fmt(cents: int) -> str:
    from app.i18n import format_cents

    return format_cents(cents)


def scope_result(
    scope: Scope, result: dict[str, Any], *, published: bool = False, approval: bool = True
) -> ScopeResult:
    """One ballot's stored tally (see voting.tally.Outcome.as_dict) as rows for pages and exports."""
    by_id = {p.id: p for p in scope.projects}
    budget = int(result["budget_cents"])
    ballots = int(result.get("ballots", 0))
    rows = []
    for row in result["projects"]:
        project = by_id.get(int(row["id"]))
        cost = _int(row.get("cost_cents")) or 0
        score = Fraction(row.get("score", 0))
        p = ProjectResult(
            id=int(row["id"]),
            title=row.get("title") or (project.title if project else ""),
            cost_cents=cost,
            score=score,
            funded=row.get("position") is not None,
            position=row.get("position"),
            reason=row.get("reason"),
            theme_id=project.theme_id if project else None,
            district_id=project.district_id if project else None,
            budget_share=Fraction(cost, budget) if budget else Fraction(0),
            vote_share=Fraction(score) / ballots if ballots else Fraction(0),
            available_cents=_int(row.get("available_cents")),
            needed_cents=_int(row.get("needed_cents")),
            price_cents=_int(row.get("price_cents")),
            payers=row.get("payers"),
            stage=row.get("stage"),
        )
        p.explanation = _explain(result["rule"], row, p, ballots, budget, approval)
        rows.append(p)
    rows.sort(key=lambda p: (not p.funded, p.position or 0, -p.score, str(p.id)))
    return ScopeResult(
        scope=scope,
        rule=result["rule"],
        ballots=ballots,
        budget_cents=budget,
        cost_cents=int(result.get("cost_cents", 0)),
        projects=rows,
        published=published,
    )


def _registered(db: Session, district_ids: list[int]) -> dict[int, int]:
    if not district_ids:
        return {}
    stmt = (
        select(User.district_id, func.count())
        .where(User.district_id.in_(district_ids))
        .group_by(User.district_id)
    )
    return {int(d): int(n) for d, n in db.execute(stmt)}


def process_results(db: Session, process: Process, *, staff: bool = False) -> list[ScopeResult]:
    """Every ballot's result: published runs; with ``staff`` the newest finished run before publication."""
    stmt = (
        select(TallyRun)
        .where(TallyRun.process_id == process.id, TallyRun.rule == process.rule, TallyRun.status == "done")
        .order_by(TallyRun.scope, TallyRun.id)
    )
    runs: dict[int, TallyRun] = {}
    for run in db.execute(stmt).scalars():
        if run.published_at is not None or staff:
            if run.scope not in runs or runs[run.scope].published_at is None or run.published_at is not None:
                runs[run.scope] = run
    if not staff and process.results_published_at is None:
        return []
    all_scopes = lifecycle.scopes(db, process)
    registered = _registered(db, [s.id for s in all_scopes if s.id])
    out = []
    for s in all_scopes:
        run = runs.get(s.id)
        if run is None or not run.result:
            continue
        res = scope_result(
            s, json.loads(run.result), published=run.published_at is not None, approval=_is_approval(process)
        )
        res.registered = registered.get(s.id, 0) if s.id else None
        out.append(res)
    return out


def _is_approval(process: Process) -> bool:
    return VOTE_TYPE[BallotType(process.ballot_type)] == "approval"


def applicable_rules(process: Process) -> list[str]:
    vote_type = VOTE_TYPE[BallotType(process.ballot_type)]
    return [rule for rule, types in RULE_VOTE_TYPES.items() if vote_type in types]


@dataclass
class Comparison:
    scope: Scope
    rules: list[str]
    results: dict[str, ScopeResult]
    ballots: int

    def rows(self) -> list[dict[str, Any]]:
        """One row per project: funded under which rules, and whether the rule choice changes it."""
        out = []
        for project in self.scope.projects:
            funded = {}
            score = Fraction(0)
            for rule in self.rules:
                res = self.results[rule]
                row = next((p for p in res.projects if p.id == project.id), None)
                funded[rule] = row.position if row is not None and row.funded else None
                if row is not None:
                    score = row.score
            flags = {v is not None for v in funded.values()}
            out.append({"project": project, "score": score, "funded": funded, "changes": len(flags) > 1})
        out.sort(key=lambda r: (-r["score"], r["project"].id))
        return out


# Tallies for the comparison view, per worker: (process, scope, rule, ballots fingerprint) → (result, ballots).
# The fingerprint (count, latest change, sum of versions) changes with any ballot of the scope, so a cached
# tally is never stale; a closed vote's ballots do not change, so staff reloading the page cost one query.
_COMPARE_CACHE: OrderedDict[tuple, tuple[dict[str, Any], int]] = OrderedDict()
_COMPARE_CACHE_SIZE = 64
_COMPARE_LOCK = threading.Lock()


def _ballots_fingerprint(db: Session, process: Process, scope: int) -> tuple:
    row = db.execute(
        select(func.count(), func.max(Ballot.updated_at), func.coalesce(func.sum(Ballot.version), 0)).where(
            Ballot.process_id == process.id, Ballot.scope == scope
        )
    ).one()
    return (int(row[0]), str(row[1]), int(row[2]))


def _tally_for_comparison(db: Session, process: Process, scope: int, rule: str) -> tuple[dict[str, Any], int]:
    from voting.tally import tally_scope

    key = (
        process.id,
        process.projects_hash,
        process.budget_cents,
        process.ballot_type,
        scope,
        rule,
        _ballots_fingerprint(db, process, scope),
    )
    with _COMPARE_LOCK:
        if key in _COMPARE_CACHE:
            _COMPARE_CACHE.move_to_end(key)
            return _COMPARE_CACHE[key]
    outcome = tally_scope(db, process, scope, rule=rule)
    value = (outcome.as_dict(), outcome.ballots)
    with _COMPARE_LOCK:
        _COMPARE_CACHE[key] = value
        while len(_COMPARE_CACHE) > _COMPARE_CACHE_SIZE:
            _COMPARE_CACHE.popitem(last=False)
    return value


def compare_rules(db: Session, process: Process) -> list[Comparison]:
    """The same ballots tallied with every applicable rule, per ballot (tallies cached per worker while the
    ballots stay the same)."""
    out = []
    rules = applicable_rules(process)
    for s in lifecycle.scopes(db, process):
        results = {}
        ballots = 0
        for rule in rules:
            outcome, ballots = _tally_for_comparison(db, process, s.id, rule)
            results[rule] = scope_result(s, outcome, approval=_is_approval(process))
        out.append(Comparison(s, rules, results, ballots))
    return out


def ballot_count(db: Session, process: Process) -> int:
    return int(
        db.execute(
            select(func.count()).select_from(Ballot).where(Ballot.process_id == process.id)
        ).scalar_one()
    )
