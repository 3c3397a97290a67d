"""``mitmachen tally FILE.pb --rule RULE [--json] [--explain]``: tally a pabulib file.

Amounts are exact: in ``--json`` output ``cost`` and ``budget`` are integers when whole and exact decimal
strings otherwise ("1000.5"); explanation figures (prices, budgets left) are rounded to 4 decimals.
Exit status: 0 on success, 2 on any error (unreadable or malformed file, rule not applicable).
"""

from __future__ import annotations

import argparse
import json
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from voting.pabulib import PabulibError, format_number, read_pabulib
from voting.rules import REASONS, RULES, RuleError, TallyResult, tally


def register(subparsers: Any) -> argparse.ArgumentParser:
    """Add the ``tally`` subcommand to an argparse subparsers object."""
    parser = subparsers.add_parser(
        "tally",
        help="tally a participatory-budgeting election from a pabulib file",
        description="Compute which projects a rule funds, from a pabulib (.pb or .pb.gz) file.",
    )
    parser.add_argument("file", metavar="FILE.pb", help="pabulib file (gzip accepted)")
    parser.add_argument("--rule", required=True, choices=list(RULES), help="tally rule")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--explain", action="store_true", help="add per-project figures")
    parser.set_defaults(func=run_tally)
    return parser


def run_tally(args: argparse.Namespace) -> int:
    """Run the ``tally`` subcommand; returns the exit status."""
    try:
        election = read_pabulib(args.file)
        result = tally(args.rule, election.profile)
    except (PabulibError, RuleError) as exc:
        print(f"tally: {args.file}: {exc}", file=sys.stderr)
        return 2
    if args.json:
        payload = json_payload(result)
        if args.explain:
            payload["explain"] = [explain_row(result, pid) for pid in result.projects]
        print(json.dumps(payload, ensure_ascii=False))
        return 0
    prof = election.profile
    print(
        f"Rule: {result.rule} ({Path(args.file).name}: {prof.vote_type}, {prof.voters} voters, "
        f"{len(prof.project_ids)} projects)"
    )
    print(f"Selected ({len(result.selected)}): {', '.join(result.selected) or '-'}")
    print(
        f"Total cost: {format_number(result.cost)} of budget {format_number(result.budget)} "
        f"(left: {format_number(result.leftover)})"
    )
    if "voter_budget" in result.details:
        print(f"Budget per voter at the end: {_approx(result.details['voter_budget'])}")
    if args.explain:
        for line in explain_lines(result):
            print(line)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point with only the ``tally`` subcommand (``python -m``-free, for tests)."""
    parser = argparse.ArgumentParser(prog="mitmachen")
    sub = parser.add_subparsers(dest="command", required=True)
    register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def exact_number(x: Fraction) -> int | str:
    """An int when whole, else the exact decimal text (or "p/q" when it has no finite decimal form)."""
    if x.denominator == 1:
        return x.numerator
    try:
        return format_number(x)
    except ValueError:
        return f"{x.numerator}/{x.denominator}"


def _approx(x: object) -> int | float | object:
    if isinstance(x, Fraction):
        return x.numerator if x.denominator == 1 else round(float(x), 4)
    return x


def json_payload(result: TallyResult) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "rule": result.rule,
        "selected": list(result.selected),
        "cost": exact_number(result.cost),
        "budget": exact_number(result.budget),
    }
    for key, value in result.details.items():
        payload[key] = _approx(value)
    return payload


def explain_row(result: TallyResult, pid: str) -> dict[str, Any]:
    fig = result.projects[pid]
    row = {key: _approx(value) for key, value in fig.as_dict().items()}
    if fig.rho is not None:
        row["rho"] = float(fig.rho)
    return row


def explain_lines(result: TallyResult) -> list[str]:
    """Human-readable per-project figures: funded projects in funding order, then the others."""
    figs = sorted(result.projects.values(), key=lambda f: (f.position is None, f.position or 0))
    lines = ["", f"{'#':>3}  {'project':<14} {'cost':>14} {'score':>10}  outcome"]
    for f in figs:
        pos = str(f.position) if f.position else "-"
        lines.append(
            f"{pos:>3}  {f.project_id:<14} {format_number(f.cost):>14} {_fmt(f.score):>10}  {_describe(f)}"
        )
    return lines


def _fmt(x: Fraction | None) -> str:
    if x is None:
        return ""
    return str(x.numerator) if x.denominator == 1 else f"{float(x):.2f}"


def _describe(f: Any) -> str:
    if f.position is not None:
        parts = ["funded" + (f" ({f.stage})" if f.stage else "")]
        if f.price is not None:
            parts.append(f"price per supporter {_fmt(f.price)}")
        elif f.rho is not None:
            parts.append(f"price per point {float(f.rho):.4f}")
        if f.payers is not None:
            parts.append(f"{f.payers} paid in full, {f.exhausted} paid all they had left")
        if f.load is not None:
            parts.append(f"load {_fmt(f.load)}")
        return ", ".join(parts)
    text = "not funded: " + REASONS.get(f.reason or "", f.reason or "not reached")
    if f.available is not None:
        text += f" (supporters had {_fmt(f.available)} left)"
    if f.needed is not None:
        text += f", {_fmt(f.needed)} missing"
    return text


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
