"""Participatory-budgeting tally rules as pure functions (standard library and numpy only).

Each rule takes ``(projects, budget, ballots, *, vote_type)`` (projects: ``(id, cost)`` pairs, ballots: a
:class:`Ballots` CSR structure) and returns a :class:`TallyResult`; :func:`tally` runs one by name on a
:class:`Profile`. Money is exact (:class:`fractions.Fraction`). Ties are broken by project id in ascending
string order ("10" before "9").
"""

from .greedy import greedy
from .mes import mes, mes_add1, mes_add1_greedy
from .phragmen import phragmen
from .profile import APPROVAL_TYPES, POINT_TYPES, VOTE_TYPES, Ballots, Profile, to_fraction
from .registry import RULE_VOTE_TYPES, RULES, check_rule, run_rule, tally
from .result import REASONS, ProjectFigures, RuleError, TallyResult

__all__ = [
    "APPROVAL_TYPES",
    "POINT_TYPES",
    "REASONS",
    "RULES",
    "RULE_VOTE_TYPES",
    "VOTE_TYPES",
    "Ballots",
    "Profile",
    "ProjectFigures",
    "RuleError",
    "TallyResult",
    "check_rule",
    "greedy",
    "mes",
    "mes_add1",
    "mes_add1_greedy",
    "phragmen",
    "run_rule",
    "tally",
    "to_fraction",
]
