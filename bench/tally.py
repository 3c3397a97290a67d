"""Tally benchmark: our rules against pabutools 1.2.3 (the research reference) in the same run.

    python -m bench.tally                      # samples + a synthetic city-wide election
    python -m bench.tally --cap 60 --synthetic-cap 300 --voters 100000

1. Every sample of tests/fixtures/pb-samples, every rule the reference computes for it: our time (best of
   ``--repeat`` runs) and pabutools' time (one run, in a child process with a time cap and a 4 GiB memory
   cap; ">cap" when it did not finish), the ratio, and whether both selected the same projects.
2. A synthetic city-wide approval election (seeded RNG): ``--voters`` voters in 8 districts, ``--projects``
   projects (local or city-wide, log-uniform costs), each voter approving 1 + Poisson(3.2) projects (at most
   10) by appeal and locality, ``--budget`` in whole currency units. mes-add1-greedy: our time and peak
   memory (tracemalloc) against pabutools (capped).

Parsing is not timed on either side. Requires numpy; pabutools only for the comparison.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import tracemalloc
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from voting.pabulib import format_pabulib, read_pabulib  # noqa: E402
from voting.rules import Ballots, Profile, tally  # noqa: E402

SAMPLES = ROOT / "tests" / "fixtures" / "pb-samples"
OUR_RULE = {
    "greedy_votes": "greedy",
    "greedy_score": "greedy",
    "mes_cost": "mes",
    "mes_points": "mes",
    "mes_cost_add1": "mes-add1",
    "mes_cost_add1_greedy": "mes-add1-greedy",
    "seq_phragmen": "phragmen",
}

# The child process: the pabutools calls of reference.py, timed around the rule call only.
CHILD = r"""
import json, sys, time
from pabutools.election import AdditiveSatisfaction, Additive_Cardinal_Sat, Cost_Sat, parse_pabulib
from pabutools.election.ballot import AbstractOrdinalBallot
from pabutools.rules import (completion_by_rule_combination, greedy_utilitarian_welfare,
                             method_of_equal_shares, sequential_phragmen)
from pabutools.tiebreaking import lexico_tie_breaking as tie

def score_times_cost(instance, profile, ballot, project, precomputed_values):
    if isinstance(ballot, AbstractOrdinalBallot):
        score = len(ballot) - ballot.position(project) if project in ballot else 0
    else:
        score = ballot.get(project, 0)
    return score * project.cost

class ScoreTimesCost(AdditiveSatisfaction):
    def __init__(self, instance, profile, ballot):
        AdditiveSatisfaction.__init__(self, instance, profile, ballot, score_times_cost)

add1 = dict(sat_class=Cost_Sat, voter_budget_increment=1, tie_breaking=tie)
greedy = dict(sat_class=Cost_Sat, tie_breaking=tie)
rules = {
    "greedy_votes": lambda i, p: greedy_utilitarian_welfare(i, p, **greedy),
    "greedy_score": lambda i, p: greedy_utilitarian_welfare(i, p, sat_class=ScoreTimesCost, tie_breaking=tie),
    "mes_cost": lambda i, p: method_of_equal_shares(i, p, sat_class=Cost_Sat, tie_breaking=tie),
    "mes_points": lambda i, p: method_of_equal_shares(
        i, p, sat_class=Additive_Cardinal_Sat, tie_breaking=tie),
    "mes_cost_add1": lambda i, p: method_of_equal_shares(i, p, **add1),
    "mes_cost_add1_greedy": lambda i, p: completion_by_rule_combination(
        i, p, [method_of_equal_shares, greedy_utilitarian_welfare], [add1, greedy]),
    "seq_phragmen": lambda i, p: sequential_phragmen(i, p, tie_breaking=tie),
}
instance, profile = parse_pabulib(sys.argv[1])
t0 = time.perf_counter()
outcome = rules[sys.argv[2]](instance, profile)
print(json.dumps({"seconds": time.perf_counter() - t0, "selected": [p.name for p in outcome]}))
"""


def _limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, 4 << 30))


def pabutools_time(path: Path, key: str, cap: float) -> tuple[float | None, list[str] | None, str]:
    """(seconds, selection, note) of one pabutools call; seconds None when capped or failed."""
    try:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), key],
            capture_output=True,
            text=True,
            timeout=cap,
            preexec_fn=_limit_memory,
        )
    except subprocess.TimeoutExpired:
        return None, None, f">{cap:g}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return None, None, "n/a" if "No module named" in last else f"failed ({last[:40]})"
    out = json.loads(proc.stdout)
    return out["seconds"], out["selected"], f"{out['seconds']:.3f}"


def ours_time(profile: Profile, rule: str, repeat: int) -> tuple[float, list[str]]:
    best, selected = float("inf"), []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = tally(rule, profile)
        best = min(best, time.perf_counter() - t0)
        selected = result.selected
    return best, selected


def ratio(ours: float, theirs: float | None, note: str) -> str:
    if theirs is not None:
        return f"{theirs / ours:.0f}x" if theirs >= ours else f"{theirs / ours:.2f}x"
    if note.startswith(">"):
        return f">{float(note[1:]) / ours:.0f}x"
    return "-"


def bench_samples(directory: Path, cap: float, repeat: int) -> None:
    expected = json.loads((directory / "expected.json").read_text())
    print(f"== samples ({directory}); pabutools capped at {cap:g} s")
    print(f"{'file':<44} {'rule':<16} {'ours s':>9} {'pabutools s':>12} {'ratio':>8}  same")
    total_ours = 0.0
    for name in sorted(expected):
        profile = read_pabulib(directory / name).profile
        for key in sorted(expected[name]["rules"]):
            rule = OUR_RULE[key]
            ours, selected = ours_time(profile, rule, repeat)
            total_ours += ours
            theirs, their_selection, note = pabutools_time(directory / name, key, cap)
            same = "-"
            if their_selection is not None:
                mine = sorted(selected) if rule == "phragmen" else selected
                same = "yes" if mine == their_selection else "NO"
            print(
                f"{name.removesuffix('.pb')[:44]:<44} {rule:<16} {ours:>9.4f} {note:>12} "
                f"{ratio(ours, theirs, note):>8}  {same}",
                flush=True,
            )
    print(f"total of our times: {total_ours:.3f} s")


def synthetic_election(voters: int, projects: int, budget: int, seed: int) -> Profile:
    """A city-wide approval election: districts, local and city-wide projects, realistic ballot lengths."""
    rng = np.random.default_rng(seed)
    districts = 8
    home = rng.integers(-1, districts, size=projects)  # -1: city-wide project
    appeal = rng.lognormal(0.0, 0.8, size=projects)
    cost = np.round(np.exp(rng.uniform(np.log(8_000), np.log(450_000), size=projects)), -2).astype(np.int64)
    district = rng.integers(0, districts, size=voters)
    length = np.minimum(1 + rng.poisson(3.2, size=voters), min(10, projects))
    local = home[None, :] == district[:, None]
    elsewhere = (home[None, :] >= 0) & ~local
    weight = np.log(appeal)[None, :] + 1.5 * local + 0.3 * (home[None, :] == -1) - 1.2 * elsewhere
    order = np.argsort(-(weight + rng.gumbel(size=(voters, projects))), axis=1)
    items = order[np.arange(projects)[None, :] < length[:, None]].astype(np.int32)
    indptr = np.zeros(voters + 1, dtype=np.int64)
    np.cumsum(length, out=indptr[1:])
    ids = tuple(str(1000 + k) for k in range(projects))
    return Profile(
        ids, tuple(Fraction(int(c)) for c in cost), Fraction(budget), Ballots(indptr, items), "approval"
    )


def bench_synthetic(args: argparse.Namespace) -> None:
    profile = synthetic_election(args.voters, args.projects, args.budget, args.seed)
    votes = int(profile.ballots.items.size)
    print(
        f"\n== synthetic city-wide election: {args.voters} voters, {args.projects} projects, "
        f"{votes} approvals ({votes / args.voters:.2f} per voter), budget {args.budget} "
        f"({args.budget / args.voters:.2f} per voter), seed {args.seed}"
    )
    ours: dict[str, float] = {}
    for rule in ("greedy", "mes", "mes-add1-greedy"):
        ours[rule], _ = ours_time(profile, rule, args.repeat)
        print(f"ours {rule:<16} {ours[rule]:8.3f} s (best of {args.repeat})", flush=True)
    tracemalloc.start()
    result = tally("mes-add1-greedy", profile)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        f"mes-add1-greedy: {len(result.selected)} projects, cost {result.cost}, final budget per voter "
        f"{float(result.details['voter_budget']):.2f} after {result.details['mes_runs']} MES runs and "
        f"{result.details['range_checks']} range checks; peak traced memory {peak / 2**20:.1f} MiB, "
        f"process max RSS {rss:.0f} MiB"
    )
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.pb"
        ids, ballots = profile.project_ids, profile.ballots
        rows = [
            {"voter_id": str(v), "vote": [ids[k] for k in ballots.ballot(v)]} for v in range(ballots.voters)
        ]
        meta = {"budget": args.budget, "vote_type": "approval"}
        path.write_text(
            format_pabulib(meta, [{"project_id": p, "cost": c} for p, c in profile.projects], rows)
        )
        for key in ("mes_cost", "mes_cost_add1_greedy"):
            theirs, _, note = pabutools_time(path, key, args.synthetic_cap)
            mine = ours[OUR_RULE[key]]
            speedup = ratio(mine, theirs, note)
            print(
                f"{OUR_RULE[key]:<16} ours {mine:8.3f} s   pabutools {note:>8} s   ratio {speedup}",
                flush=True,
            )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=Path, default=SAMPLES)
    parser.add_argument("--cap", type=float, default=30.0, help="pabutools time cap per sample call (s)")
    parser.add_argument("--synthetic-cap", type=float, default=120.0, help="pabutools cap, synthetic (s)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--voters", type=int, default=60_000)
    parser.add_argument("--projects", type=int, default=80)
    parser.add_argument("--budget", type=int, default=3_000_000)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--no-samples", action="store_true")
    parser.add_argument("--no-synthetic", action="store_true")
    args = parser.parse_args(argv)
    if not args.no_samples:
        bench_samples(args.samples, args.cap, args.repeat)
    if not args.no_synthetic:
        bench_synthetic(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
