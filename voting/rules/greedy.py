"""Greedy by votes / score: the rule most cities use."""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction

from .profile import Ballots, Election, Number, prepare
from .result import DID_NOT_FIT, OVER_BUDGET, ProjectFigures, TallyResult


def greedy(
    projects: Sequence[tuple[str, Number]], budget: Number, ballots: Ballots, *, vote_type: str
) -> TallyResult:
    """Fund projects in decreasing order of votes (approval, choose-1), points (cumulative) or rank score
    (ordinal: the project at position p of a ballot of length L scores L - p); a project that no longer fits
    the budget left is skipped and the next one is tried. Ties: smaller project id (as a string) first.

    Same as pabutools' ``greedy_utilitarian_welfare`` with cost satisfaction (approval) or score x cost
    satisfaction: a project of cost 0 has density 0 there, so it comes after all projects with votes.
    """
    election = prepare(projects, budget, ballots, vote_type)
    scores = election.scores()
    result = TallyResult("greedy", [], Fraction(0), election.money(election.budget))
    for k, pid in enumerate(election.ids):
        result.projects[pid] = ProjectFigures(pid, election.money(election.costs[k]), scores[k])
    greedy_fill(election, scores, [], result)
    return result


def greedy_order(election: Election, scores: Sequence[Fraction]) -> list[int]:
    """Project indices by decreasing density (the score; 0 for projects of cost 0), then by id."""
    density = [s if c > 0 else Fraction(0) for s, c in zip(scores, election.costs, strict=True)]
    return sorted(range(election.projects), key=lambda k: (-density[k], int(election.lex_rank[k])))


def greedy_fill(
    election: Election,
    scores: Sequence[Fraction],
    chosen: list[int],
    result: TallyResult,
    stage: str | None = None,
) -> None:
    """Complete ``chosen`` (already funded, in order) greedily; record everything in ``result``."""
    taken = set(chosen)
    left = election.budget - sum(election.costs[k] for k in chosen)
    position = len(chosen)
    for k in greedy_order(election, scores):
        if k in taken:
            continue
        figures = result.projects[election.ids[k]]
        cost = election.costs[k]
        if cost <= left:
            left -= cost
            position += 1
            chosen.append(k)
            figures.position = position
            figures.reason = figures.needed = figures.available = None
            figures.stage = stage
        elif figures.reason is None:
            figures.reason = OVER_BUDGET if cost > election.budget else DID_NOT_FIT
            figures.needed = election.money(cost - left)
    result.selected = [election.ids[k] for k in chosen]
    result.cost = election.money(election.budget - left)
