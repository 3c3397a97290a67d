"""Command line for the audit logs.

* ``mitmachen verify BUNDLE [--key-id HEX]``: verify an audit bundle (zip or folder) without the database;
  exit 0 valid (summary on stdout), 1 invalid (the first failure on stderr), 2 unreadable.
* ``mitmachen log sign --log LOG_ID``: sign a tree head now (reason "demand");
  ``mitmachen log sign --due [--log LOG_ID] [--every MINUTES]``: sign where one is due (for cron: every
  open vote's log and the platform log, when the log grew and its last head is older than MINUTES).
* ``mitmachen log heads --log LOG_ID [--json]``: list the signed heads.
* ``mitmachen log bundle --log LOG_ID -o PATH [--folder]``: write an audit bundle.

LOG_ID is ``process:<id>`` or ``platform``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

LOG_RE = re.compile(r"^(?:process:[1-9][0-9]{0,9}|platform)$")
DEFAULT_EVERY = 60


def _log_id(value: str) -> str:
    if not LOG_RE.match(value):
        raise argparse.ArgumentTypeError("LOG_ID must be process:<id> or platform")
    return value


def register(subparsers: Any) -> None:
    """Add ``verify`` and ``log`` to the ``mitmachen`` command."""
    p = subparsers.add_parser(
        "verify",
        help="verify an audit bundle (exit 0 valid, 1 invalid, 2 unreadable)",
        description="Re-check an audit bundle (zip or folder) from its files alone: entries, signed heads, "
        "the replay of the ballots and the recomputed result. Exit status 0 valid, 1 invalid (the first "
        "failure is named), 2 unreadable.",
    )
    p.add_argument("bundle", metavar="BUNDLE", help="the audit bundle (.zip or folder)")
    p.add_argument("--key-id", help="require this signing key id (as published by the platform)")
    p.set_defaults(func=cmd_verify)

    log = subparsers.add_parser(
        "log", help="signed tree heads and bundles of the audit logs", description="Audit log commands."
    )
    sub = log.add_subparsers(dest="log_command", metavar="COMMAND", required=True)
    s = sub.add_parser("sign", help="sign a tree head", description="Sign a tree head of an audit log.")
    s.add_argument("--log", type=_log_id, metavar="LOG_ID", help="process:<id> or platform")
    s.add_argument("--due", action="store_true", help="only where a head is due (for cron)")
    s.add_argument(
        "--every",
        type=int,
        default=DEFAULT_EVERY,
        metavar="MINUTES",
        help=f"with --due (default {DEFAULT_EVERY})",
    )
    s.set_defaults(func=cmd_sign)
    h = sub.add_parser("heads", help="list signed tree heads", description="List the signed heads of a log.")
    h.add_argument("--log", type=_log_id, metavar="LOG_ID", required=True)
    h.add_argument("--json", action="store_true", help="print JSON")
    h.set_defaults(func=cmd_heads)
    b = sub.add_parser("bundle", help="write an audit bundle", description="Write the audit bundle of a log.")
    b.add_argument("--log", type=_log_id, metavar="LOG_ID", required=True)
    b.add_argument("-o", "--output", required=True, metavar="PATH", help="zip file (or folder with --folder)")
    b.add_argument("--folder", action="store_true", help="write a folder instead of a zip file")
    b.set_defaults(func=cmd_bundle)


def cmd_verify(args: argparse.Namespace) -> int:
    from voting import verifier

    return verifier.run(args.bundle, expected_key_id=args.key_id)


def _engine_and_settings():
    from app.database import make_engine
    from app.settings import Settings
    from voting import keys

    settings = Settings.from_env().validate()
    keys.configure(settings)
    return make_engine(settings), settings


def open_logs(db) -> list[str]:
    """The logs of every vote that is open now, and the platform log."""
    from sqlalchemy import select

    from voting.audit import PLATFORM_LOG, process_log
    from voting.models import Process

    stmt = select(Process.id).where(Process.voting_opened_at.is_not(None), Process.voting_closed_at.is_(None))
    return [process_log(pid) for pid in db.execute(stmt.order_by(Process.id)).scalars()] + [PLATFORM_LOG]


def _exists(db, log_id: str) -> bool:
    from voting.models import Process

    if log_id == "platform":
        return True
    return db.get(Process, int(log_id.split(":")[1])) is not None


def cmd_sign(args: argparse.Namespace) -> int:
    from app.database import new_session
    from voting import heads

    if not args.due and not args.log:
        print("log sign: give --log LOG_ID (or --due)", file=sys.stderr)
        return 2
    if args.every < 1:
        print("log sign: --every must be at least 1 minute", file=sys.stderr)
        return 2
    engine, _settings = _engine_and_settings()
    signed = []
    with new_session(engine, write=True) as db:
        if args.log and not _exists(db, args.log):
            print(f"log sign: no process for {args.log}", file=sys.stderr)
            return 2
        logs = [args.log] if args.log else open_logs(db)
        for log_id in logs:
            if args.due:
                head = heads.maybe_sign_due(db, log_id=log_id, every_minutes=args.every)
            else:
                head = heads.sign_head(db, log_id=log_id, reason="demand")
            if head is not None:
                signed.append(heads.head_json(head))
        db.commit()
    for head in signed:
        print(f"signed {head['log']}: size {head['size']} root {head['root']} at {head['timestamp']}")
    if not signed:
        print("no head was due")
    return 0


def cmd_heads(args: argparse.Namespace) -> int:
    from app.database import new_session
    from voting import heads

    engine, _settings = _engine_and_settings()
    with new_session(engine) as db:
        rows = [heads.head_json(h) for h in heads.list_heads(db, args.log)]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print(f"{args.log}: no signed heads")
    for h in rows:
        print(f"{h['size']:>10}  {h['root']}  {h['timestamp']}  {h['reason']:<8}  key {h['key_id'][:16]}")
    return 0


def cmd_bundle(args: argparse.Namespace) -> int:
    from app.database import new_session
    from voting import bundle

    engine, _settings = _engine_and_settings()
    with new_session(engine, write=True) as db:
        try:
            bundle.prepare(db, log_id=args.log)
        except bundle.BundleError as exc:
            print(f"log bundle: {exc}", file=sys.stderr)
            return 2
        db.commit()
    target = Path(args.output)
    with new_session(engine) as db:
        try:
            if args.folder:
                meta = bundle.write_folder(db, log_id=args.log, folder=target)
            else:
                with open(target, "wb") as fh:
                    meta = bundle.write_zip(db, log_id=args.log, target=fh)
        except bundle.BundleError as exc:
            print(f"log bundle: {exc}", file=sys.stderr)
            return 2
    print(f"wrote {target}: {meta['entries']} entries, {meta['heads']} heads of {args.log}")
    return 0
