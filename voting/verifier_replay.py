"""The replay of a process log for the independent verifier (``voting/verifier.py``): the state of a
participatory-budget process read entry by entry (``Replay``), with the checks of each entry type, the
tally recomputed from the final ballots and the comparison with a published result.

Like the verifier it imports only the standard library and the pure modules ``voting.merkle``,
``voting.selection`` and ``voting.verifier_rules``: ``voting/bundle.py`` concatenates it, with them, into
the bundle's single-file ``verify.py``.
"""

from __future__ import annotations

import datetime
import hashlib
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

from voting.merkle import canonical_json
from voting.selection import BallotConfig, InvalidSelection, validate
from voting.verifier_rules import RULE_VOTE_TYPES
from voting.verifier_rules import tally as recount

PROCESS_TYPES = (
    "process.frozen",
    "process.opened",
    "ballot.cast",
    "ballot.replaced",
    "process.closed",
    "tally.published",
    "links.destroyed",
)
VOTE_TYPES = {"approval": "approval", "knapsack": "approval", "cumulative": "cumulative", "ranked": "ordinal"}
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


class Invalid(Exception):
    """A check failed (exit status 1). ``check`` names the kind of check, ``where`` the entry or head."""

    def __init__(self, check: str, where: str, message: str) -> None:
        super().__init__(f"{where}: {message}")
        self.check, self.where, self.message = check, where, message


def parse_time(text: Any) -> datetime.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        return datetime.datetime.strptime(text, TIME_FORMAT).replace(tzinfo=datetime.UTC)
    except ValueError:
        return None


# --- the replay of a process log ----------------------------------------------------------------------------


@dataclass
class Scope:
    scope: int
    config: BallotConfig
    vote_type: str
    titles: dict[int, str]


@dataclass
class BallotState:
    scope: int
    version: int
    selection: Any
    index: int


@dataclass
class Replay:
    """The state of a process while its log is read entry by entry."""

    opened_at: int | None = None
    opened_time: datetime.datetime | None = None
    closed_at: int | None = None
    frozen_hash: str | None = None
    frozen_projects: set[tuple[int, int, int]] | None = None
    rule: str | None = None
    ends: datetime.datetime | None = None
    scopes: dict[int, Scope] = field(default_factory=dict)
    ballots: dict[str, BallotState] = field(default_factory=dict)
    closed_counts: dict[int, int] | None = None
    published: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    links_destroyed_at: int | None = None
    replaced: int = 0
    paper: int = 0

    def fail(self, index: int, check: str, message: str) -> Invalid:
        return Invalid(check, f"entry {index}", message)

    def step(self, index: int, kind: str, at: str, payload: Any) -> None:
        if kind not in PROCESS_TYPES:
            raise self.fail(index, "replay", f"unknown entry type {kind!r} in a process log")
        if not isinstance(payload, dict):
            raise self.fail(index, "replay", f"{kind}: the payload is not an object")
        getattr(self, "_" + kind.replace(".", "_"))(index, at, payload)

    def _process_frozen(self, index: int, at: str, payload: dict[str, Any]) -> None:
        if self.opened_at is not None or self.frozen_hash is not None:
            raise self.fail(
                index, "replay", "process.frozen after the project list was already frozen or opened"
            )
        rows = payload.get("projects")
        digest = payload.get("projects_hash")
        if not isinstance(rows, list) or hashlib.sha256(canonical_json(rows)).hexdigest() != digest:
            raise self.fail(
                index, "projects", "process.frozen: projects_hash does not match the project list"
            )
        try:
            self.frozen_projects = {(int(r["id"]), int(r["cost_cents"]), int(r["scope"])) for r in rows}
        except (KeyError, TypeError, ValueError) as exc:
            raise self.fail(index, "projects", f"process.frozen: malformed project list ({exc})") from exc
        self.frozen_hash = digest

    def _process_opened(self, index: int, at: str, payload: dict[str, Any]) -> None:
        if self.opened_at is not None:
            raise self.fail(index, "replay", "a second process.opened")
        raw_scopes = payload.get("scopes")
        if isinstance(raw_scopes, list):  # also accepted: [{"scope": id, ...}]
            raw_scopes = {str(s.get("scope")): s for s in raw_scopes if isinstance(s, dict)}
        if not isinstance(raw_scopes, dict) or not raw_scopes:
            raise self.fail(index, "replay", "process.opened names no ballots (scopes)")
        rule = payload.get("rule")
        if rule not in RULE_VOTE_TYPES:
            raise self.fail(index, "rule", f"process.opened declares an unknown tally rule {rule!r}")
        projects: set[tuple[int, int, int]] = set()
        for sid, data in raw_scopes.items():
            try:
                scope = int(sid)
                config = BallotConfig.from_json(data.get("config") or data.get("ballot"))
                titles = {int(p["id"]): str(p.get("title", "")) for p in data.get("projects", [])}
                listed = {int(p["id"]): int(p["cost_cents"]) for p in data.get("projects", [])}
            except (AttributeError, KeyError, TypeError, ValueError) as exc:
                raise self.fail(index, "replay", f"process.opened: malformed ballot {sid!r} ({exc})") from exc
            if listed != dict(config.project_costs):
                raise self.fail(
                    index, "projects", f"process.opened: ballot {scope} lists other projects than its rules"
                )
            vote_type = VOTE_TYPES.get(config.ballot_type)
            if vote_type is None:
                raise self.fail(
                    index, "replay", f"process.opened: unknown ballot type {config.ballot_type!r}"
                )
            if vote_type not in RULE_VOTE_TYPES[rule]:
                raise self.fail(index, "rule", f"rule {rule} does not apply to {config.ballot_type} ballots")
            self.scopes[scope] = Scope(scope, config, vote_type, titles)
            projects |= {(pid, cost, scope) for pid, cost in listed.items()}
        if self.frozen_hash is not None:
            if payload.get("projects_hash") != self.frozen_hash or projects != self.frozen_projects:
                raise self.fail(index, "projects", "process.opened: the projects differ from the frozen list")
        self.rule = rule
        self.opened_at = index
        self.opened_time = parse_time(at)
        ends = payload.get("voting_ends_at")
        if ends is None and isinstance(payload.get("voting"), dict):
            ends = payload["voting"].get("ends_at")
        self.ends = parse_time(ends)
        if ends is not None and self.ends is None:
            raise self.fail(index, "replay", "process.opened: malformed voting_ends_at")

    def _ballot(self, index: int, at: str, payload: dict[str, Any], kind: str) -> tuple[str, int, Any]:
        if self.opened_at is None or self.closed_at is not None:
            where = (
                "before process.opened"
                if self.opened_at is None
                else f"after process.closed (entry {self.closed_at})"
            )
            raise self.fail(index, "window", f"{kind} outside the voting window ({where})")
        when = parse_time(at)
        if when is None:
            raise self.fail(index, "window", f"{kind}: malformed timestamp {at!r}")
        if (self.opened_time is not None and when < self.opened_time) or (
            self.ends is not None and when >= self.ends
        ):
            raise self.fail(index, "window", f"{kind} at {at} is outside the voting window")
        uid = payload.get("ballot")
        if not isinstance(uid, str) or not uid:
            raise self.fail(index, "ballot", f"{kind} without a ballot identifier")
        scope = payload.get("scope")
        if isinstance(scope, bool) or not isinstance(scope, int) or scope not in self.scopes:
            raise self.fail(index, "ballot", f"{kind} for ballot {uid}: unknown ballot scope {scope!r}")
        config = self.scopes[scope].config
        selection = payload.get("selection")
        try:
            canonical = validate(config, selection)
        except InvalidSelection as exc:
            raise self.fail(
                index, "selection", f"{kind} for ballot {uid}: invalid selection ({exc})"
            ) from exc
        try:
            same = canonical_json(canonical) == canonical_json(selection)
        except (TypeError, ValueError):
            same = False
        if not same:
            raise self.fail(index, "selection", f"{kind} for ballot {uid}: selection not in canonical form")
        if payload.get("paper") is True:
            self.paper += 1
        return uid, scope, canonical

    def _ballot_cast(self, index: int, at: str, payload: dict[str, Any]) -> None:
        uid, scope, selection = self._ballot(index, at, payload, "ballot.cast")
        if uid in self.ballots:
            first = self.ballots[uid].index
            raise self.fail(
                index,
                "ballot",
                f"ballot {uid} cast a second time (first at entry {first}) without ballot.replaced",
            )
        if payload.get("version", 1) != 1:
            raise self.fail(
                index, "ballot", f"ballot.cast for ballot {uid} with version {payload.get('version')!r}"
            )
        self.ballots[uid] = BallotState(scope, 1, selection, index)

    def _ballot_replaced(self, index: int, at: str, payload: dict[str, Any]) -> None:
        uid, scope, selection = self._ballot(index, at, payload, "ballot.replaced")
        previous = self.ballots.get(uid)
        if previous is None:
            raise self.fail(index, "ballot", f"ballot.replaced for ballot {uid}, which was never cast")
        if previous.scope != scope:
            raise self.fail(index, "ballot", f"ballot.replaced moves ballot {uid} to another ballot scope")
        if payload.get("version") != previous.version + 1:
            raise self.fail(
                index,
                "ballot",
                f"ballot.replaced for ballot {uid} has version {payload.get('version')!r}, "
                f"expected {previous.version + 1}",
            )
        self.ballots[uid] = BallotState(scope, previous.version + 1, selection, index)
        self.replaced += 1

    def _process_closed(self, index: int, at: str, payload: dict[str, Any]) -> None:
        if self.opened_at is None or self.closed_at is not None:
            raise self.fail(index, "replay", "process.closed without an open vote")
        self.closed_at = index
        counts = payload.get("ballots")
        if counts is not None:
            if not isinstance(counts, dict):
                raise self.fail(index, "count", "process.closed: malformed ballot counts")
            actual = self.counts()
            for sid, n in counts.items():
                try:
                    scope = int(sid)
                except ValueError as exc:
                    raise self.fail(index, "count", f"process.closed: unknown ballot {sid!r}") from exc
                if n != actual.get(scope, 0):
                    raise self.fail(
                        index,
                        "count",
                        f"process.closed reports {n} ballots in ballot scope {scope}, "
                        f"the log holds {actual.get(scope, 0)}",
                    )
            self.closed_counts = actual

    def _tally_published(self, index: int, at: str, payload: dict[str, Any]) -> None:
        if self.closed_at is None:
            raise self.fail(index, "replay", "tally.published before process.closed")
        scope = payload.get("scope")
        if isinstance(scope, bool) or not isinstance(scope, int) or scope not in self.scopes:
            raise self.fail(index, "result", f"tally.published for an unknown ballot scope {scope!r}")
        self.published.append((index, payload))

    def _links_destroyed(self, index: int, at: str, payload: dict[str, Any]) -> None:
        if self.closed_at is None:
            raise self.fail(index, "replay", "links.destroyed before process.closed")
        self.links_destroyed_at = index

    def counts(self) -> dict[int, int]:
        out = dict.fromkeys(self.scopes, 0)
        for state in self.ballots.values():
            out[state.scope] += 1
        return out

    def tally(self, scope: int) -> dict[str, Any]:
        """The result of one ballot scope recomputed from the final ballots (money in euros, as the
        platform hands it to its rules: ``mes-add1`` raises budgets one euro at a time)."""
        assert self.rule is not None
        s = self.scopes[scope]
        projects = [(str(pid), Fraction(cost, 100)) for pid, cost in sorted(s.config.project_costs.items())]
        votes: list[Any] = []
        for state in self.ballots.values():
            if state.scope != scope:
                continue
            if isinstance(state.selection, dict):
                votes.append({str(k): int(v) for k, v in state.selection.items()})
            else:
                votes.append([str(pid) for pid in state.selection])
        outcome = recount(self.rule, projects, Fraction(s.config.budget_cents, 100), votes, s.vote_type)
        return {
            "scope": scope,
            "rule": self.rule,
            "selected": [int(pid) for pid in outcome.selected],
            "cost_cents": int(outcome.cost * 100),
            "budget_cents": int(outcome.budget * 100),
            "ballots": len(votes),
        }


def _same_result(published: dict[str, Any], computed: dict[str, Any]) -> str | None:
    """None if a published result equals the recomputed one, otherwise what differs."""
    try:
        selected = sorted(int(x) for x in published.get("selected", []))
    except (TypeError, ValueError):
        return "the selected projects are malformed"
    if selected != sorted(computed["selected"]):
        return f"selected {selected}, recomputed {sorted(computed['selected'])}"
    if published.get("rule", computed["rule"]) != computed["rule"]:
        return f"rule {published.get('rule')!r}, declared {computed['rule']!r}"
    cost = published.get("cost_cents", published.get("cost"))
    if cost is not None and cost != computed["cost_cents"]:
        return f"cost {cost} cents, recomputed {computed['cost_cents']}"
    budget = published.get("budget_cents", published.get("budget"))
    if budget is not None and budget != computed["budget_cents"]:
        return f"budget {budget} cents, the ballot's budget is {computed['budget_cents']}"
    if "ballots" in published and published["ballots"] != computed["ballots"]:
        return f"{published['ballots']} ballots counted, the log holds {computed['ballots']}"
    return None
