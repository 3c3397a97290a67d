"""``mitmachen digest [--dry-run]``: send the pending e-mail digests (run it from cron, e.g. hourly).

Registered through ``app.main.cli_plugins()``. Each person's digest is committed on its own with its mail
queued in the outbox (app/outbox.py), then the queued mails are handed to the SMTP server; a failed
delivery stays queued and is retried by the outbox loop, never repeating the mails already sent.
Exit codes: 0 all sent, 1 some deliveries failed (named on stderr), 2 bad configuration (app.cli).
"""

from __future__ import annotations

import argparse
import sys

from app import outbox
from app.models import User


def cmd_digest(args: argparse.Namespace) -> int:
    from app.database import make_engine, new_session
    from app.settings import Settings
    from proposals.digest import recipients, send_digest

    settings = Settings.from_env()
    engine = make_engine(settings)
    sent = mailed = failed = 0
    with new_session(engine) as db:
        user_ids = recipients(db)
    mail_to_user: dict[int, int] = {}
    with outbox.reserve() as reservation:  # the digests' mail goes out below, right after each commit
        for user_id in user_ids:
            with new_session(engine) as db:
                user = db.get(User, user_id)
                if user is None:
                    continue
                count = send_digest(db, user=user, settings=settings, dry_run=args.dry_run)
                if args.dry_run:
                    db.rollback()
                else:
                    db.commit()
                    mail_to_user.update(dict.fromkeys(reservation.committed[len(mail_to_user) :], user_id))
            if count:
                sent += 1
                mailed += count
                if args.dry_run:
                    print(f"would mail user {user_id}: {count} notifications")
    report = outbox.deliver_reserved(engine, settings, reservation)
    for mail_id, _to, error in report.problems:
        failed += 1
        print(
            f"error: digest to user {mail_to_user.get(mail_id)} failed: {error} "
            "(the mail stays queued; the outbox retries it)",
            file=sys.stderr,
        )
    verb = "would send" if args.dry_run else "sent"
    print(
        f"digest: {verb} {sent} e-mails with {mailed} notifications"
        + (f", {failed} failed" if failed else "")
    )
    return 1 if failed else 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "digest",
        help="send the pending e-mail digests of notifications",
        description="Send each person one e-mail with their unread notifications of the kinds they chose "
        "for e-mail (in their language); each notification is mailed at most once. Run it from cron.",
    )
    p.add_argument("--dry-run", action="store_true", help="only count what would be sent; change nothing")
    p.set_defaults(func=cmd_digest)
