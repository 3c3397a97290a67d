"""The rules by name, and ``tally(rule_name, profile)``."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .greedy import greedy
from .mes import mes, mes_add1, mes_add1_greedy
from .phragmen import phragmen
from .profile import APPROVAL_TYPES, POINT_TYPES, VOTE_TYPES, Ballots, Number, Profile
from .result import RuleError, TallyResult

Rule = Callable[..., TallyResult]

RULES: dict[str, Rule] = {
    "greedy": greedy,
    "mes": mes,
    "mes-add1": mes_add1,
    "mes-add1-greedy": mes_add1_greedy,
    "phragmen": phragmen,
}

# Which ballots each rule accepts (those for which the reference computes a result).
RULE_VOTE_TYPES: dict[str, tuple[str, ...]] = {
    "greedy": VOTE_TYPES,
    "mes": APPROVAL_TYPES + POINT_TYPES,
    "mes-add1": APPROVAL_TYPES,
    "mes-add1-greedy": APPROVAL_TYPES,
    "phragmen": APPROVAL_TYPES,
}


def check_rule(rule_name: str, vote_type: str) -> Rule:
    """The rule function, or RuleError if the rule is unknown or does not apply to these ballots."""
    if rule_name not in RULES:
        raise RuleError(f"unknown rule {rule_name!r}; choose one of {', '.join(RULES)}")
    if vote_type not in RULE_VOTE_TYPES[rule_name]:
        accepted = ", ".join(RULE_VOTE_TYPES[rule_name])
        raise RuleError(f"rule {rule_name} does not apply to {vote_type} ballots (it needs: {accepted})")
    return RULES[rule_name]


def tally(rule_name: str, profile: Profile) -> TallyResult:
    """Run a rule by name on an election."""
    rule = check_rule(rule_name, profile.vote_type)
    return rule(profile.projects, profile.budget, profile.ballots, vote_type=profile.vote_type)


def run_rule(
    rule_name: str, projects: Sequence[tuple[str, Number]], budget: Number, ballots: Ballots, vote_type: str
) -> TallyResult:
    """Like :func:`tally` without building a Profile first."""
    return check_rule(rule_name, vote_type)(projects, budget, ballots, vote_type=vote_type)
