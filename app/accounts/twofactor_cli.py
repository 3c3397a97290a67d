"""``mitmachen reset-two-factor EMAIL``: remove an account's second factor and recovery codes (lost device).

For operators with shell access, e.g. when the only administrator lost their phone; administrators reset
other accounts on the users page. The account's sessions end; at the next login the person sets up two-
factor authentication again if their role requires it. Exit codes: 0 reset, 1 no such account.
"""

from __future__ import annotations

import argparse
import sys


def cmd_reset_2fa(args: argparse.Namespace) -> int:
    from app.accounts import twofactor
    from app.accounts.services import find_by_email
    from app.database import make_engine, new_session
    from app.settings import Settings

    settings = Settings.from_env()
    engine = make_engine(settings)
    with new_session(engine, write=True) as db:
        user = find_by_email(db, args.email)
        if user is None or user.is_deleted:
            print(f"error: no account with the e-mail address {args.email}", file=sys.stderr)
            return 1
        had = twofactor.is_enabled(db, user)
        twofactor.admin_reset(db, actor=None, target=user)
        db.commit()
    state = "was reset" if had else "was not set up; sessions ended"
    print(f"two-factor authentication of {args.email} {state}; it is set up again at the next login")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "reset-two-factor",
        help="remove an account's two-factor authentication (lost device)",
        description="Remove the TOTP authenticator and recovery codes of an account and end its sessions, "
        "e.g. when the only administrator lost their phone. Logged.",
    )
    p.add_argument("email", help="the account's e-mail address")
    p.set_defaults(func=cmd_reset_2fa)
