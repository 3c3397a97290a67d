"""``mitmachen export PROCESS_ID --format {csv,xlsx,json,pb} -o FILE``: the staff exports from the
command line (results and projects; ``pb``: the anonymised ballots of one ballot, ``--scope``).

Writes to a temporary file next to FILE and renames it when complete (no half-written exports). A progress
bar on stderr for the ballots of a ``.pb`` export. Exit status: 0 success, 2 bad input (unknown process or
ballot, unwritable file).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import Any

FORMATS = ("csv", "xlsx", "json", "pb")


def register(subparsers: Any) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "export",
        help="export a process's results and projects (csv, xlsx, json) or ballots (pb)",
        description="Export a participatory-budget process: results and projects as CSV, XLSX or JSON, or "
        "the anonymised ballots of one ballot as a pabulib .pb file.",
    )
    parser.add_argument("process_id", type=int, metavar="PROCESS_ID")
    parser.add_argument("--format", choices=FORMATS, required=True, dest="fmt")
    parser.add_argument("-o", "--output", required=True, metavar="FILE", help="where to write ('-': stdout)")
    parser.add_argument(
        "--scope", type=int, default=0, help="pb: the ballot (0 city-wide, else a district id)"
    )
    parser.add_argument("--semicolon", action="store_true", help="csv: ';' as separator (German Excel)")
    parser.add_argument(
        "--published-only", action="store_true", help="only published results (as the public sees them)"
    )
    parser.set_defaults(func=cmd_export)
    return parser


def cmd_export(args: argparse.Namespace) -> int:
    from app.database import make_engine
    from app.settings import Settings

    return run_export(
        make_engine(Settings.from_env()),
        process_id=args.process_id,
        fmt=args.fmt,
        output=args.output,
        scope=args.scope,
        semicolon=args.semicolon,
        staff=not args.published_only,
    )


def _chunks(engine, *, process_id: int, fmt: str, scope: int, semicolon: bool, staff: bool):
    from app.database import new_session
    from voting import exports, lifecycle
    from voting.models import Process
    from voting.voting_cli import ProgressBar

    with new_session(engine) as db:
        process = db.get(Process, process_id)
        if process is None:
            raise LookupError(f"no process {process_id}")
        if fmt == "pb":
            if lifecycle.get_scope(db, process, scope) is None:
                raise LookupError(f"process {process_id} has no ballot {scope}")
            bar = ProgressBar(f"export {process_id}")
            return (
                line.encode("utf-8")
                for line in exports.pb_stream(
                    engine,
                    process_id=process_id,
                    scope_id=scope,
                    on_progress=lambda n, total: bar(n / max(total, 1), "ballots"),
                )
            )
        if fmt == "json":
            return iter([exports.json_bytes(exports.results_json(db, process, staff=staff))])
        rows = exports.result_rows(db, process, staff=staff)
        if fmt == "csv":
            return exports.csv_stream(exports.RESULT_HEADER, rows, delimiter=";" if semicolon else ",")
        return exports.xlsx_stream([("Results", exports.RESULT_HEADER, rows)])


def run_export(
    engine,
    *,
    process_id: int,
    fmt: str,
    output: str,
    scope: int = 0,
    semicolon: bool = False,
    staff: bool = True,
) -> int:
    if fmt not in FORMATS:
        print(f"error: unknown format {fmt!r}; choose one of {', '.join(FORMATS)}", file=sys.stderr)
        return 2
    try:
        chunks = _chunks(
            engine, process_id=process_id, fmt=fmt, scope=scope, semicolon=semicolon, staff=staff
        )
    except LookupError as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2
    if output == "-":
        for chunk in chunks:
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        return 0
    directory = os.path.dirname(os.path.abspath(output))
    try:
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".export-")
    except OSError as exc:
        print(f"error: cannot write to {directory}: {exc.strerror}", file=sys.stderr)
        return 2
    try:
        with os.fdopen(fd, "wb") as fh:
            for chunk in chunks:
                fh.write(chunk)
        os.replace(tmp, output)
    except OSError as exc:
        os.unlink(tmp)
        print(f"error: cannot write {output}: {exc.strerror}", file=sys.stderr)
        return 2
    except BaseException:
        os.unlink(tmp)
        raise
    print(f"wrote {output}", file=sys.stderr)
    return 0
