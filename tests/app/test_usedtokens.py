"""Spent single-use tokens (app/usedtokens.py, table ``used_token``): a token is spent once per purpose, even
by concurrent requests; only its SHA-256 digest is stored; expired rows are purged. The users of the service
(the data-export download, the mailed re-authentication links) record their tokens there, not among the
rate-limit events."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import threading
import time

import pytest
from sqlalchemy import select

from app import gdpr, usedtokens
from app.database import new_session, utcnow
from app.models import RateLimitEvent, UsedToken
from tests.conftest import PASSWORD, query

LATER = utcnow() + dt.timedelta(hours=2)


def test_a_token_is_spent_once_per_purpose(db):
    digest = usedtokens.digest("some.signed-token")
    assert digest == hashlib.sha256(b"some.signed-token").hexdigest()
    with new_session(db.engine, write=True) as s:
        assert not usedtokens.is_spent(s, "test", digest)
        assert usedtokens.spend(s, "test", digest, LATER) is True
        assert usedtokens.is_spent(s, "test", digest)
        assert usedtokens.spend(s, "test", digest, LATER) is False  # refused, nothing changes
        assert usedtokens.spend(s, "other", digest, LATER) is True  # purposes are separate
        assert not usedtokens.is_spent(s, "test", usedtokens.digest("another token"))
        s.commit()
    rows = query(db, UsedToken)
    assert sorted(r.purpose for r in rows) == ["other", "test"]
    assert all(r.digest == digest and r.expires_at == LATER and r.used_at <= utcnow() for r in rows)


def test_a_rolled_back_spend_leaves_the_token_unused(db):
    digest = usedtokens.digest("rolled back")
    with new_session(db.engine, write=True) as s:
        assert usedtokens.spend(s, "test", digest, LATER)
        s.rollback()
    with new_session(db.engine, write=True) as s:
        assert usedtokens.spend(s, "test", digest, LATER)
        s.commit()


def test_only_digests_are_stored(db):
    """The service refuses anything but a SHA-256 hex digest, so a token is never stored by mistake."""
    with new_session(db.engine, write=True) as s:
        for wrong in ("a-plain-token", "A" * 64, "0" * 63, ""):
            with pytest.raises(ValueError):
                usedtokens.spend(s, "test", wrong, LATER)
        with pytest.raises(ValueError):
            usedtokens.spend(s, "x" * 41, usedtokens.digest("t"), LATER)
    assert query(db, UsedToken) == []


def test_expired_rows_are_purged(db):
    now = utcnow()
    with new_session(db.engine, write=True) as s:
        usedtokens.spend(s, "test", usedtokens.digest("old"), now - dt.timedelta(seconds=1))
        usedtokens.spend(s, "test", usedtokens.digest("current"), now + dt.timedelta(minutes=10))
        s.commit()
    with new_session(db.engine, write=True) as s:
        assert usedtokens.purge_expired(s, now) == 1
        s.commit()
    assert [r.digest for r in query(db, UsedToken)] == [usedtokens.digest("current")]
    assert usedtokens.purge(db.engine, now) == 0  # nothing left to purge: only a read
    assert usedtokens.purge(db.engine, now + dt.timedelta(minutes=11)) == 1
    assert query(db, UsedToken) == []


def test_rows_outlive_the_token_they_stand_for():
    now = utcnow()
    assert (
        usedtokens.keep_until(dt.timedelta(minutes=15), now)
        == now + dt.timedelta(minutes=15) + usedtokens.GRACE
    )


def test_concurrent_spends_of_one_token_pass_once(db):
    """Eight requests spend the same token at once, each in its own transaction (on PostgreSQL the inserts
    really overlap: the later ones wait for the first to commit and then insert nothing): exactly one passes."""
    digest = usedtokens.digest("raced token")
    barrier = threading.Barrier(8)
    results: list[bool] = []
    errors: list[Exception] = []

    def attempt() -> None:
        try:
            barrier.wait(10)
            with new_session(db.engine, write=True) as s:  # SQLite: BEGIN IMMEDIATE, as requests that write
                spent = usedtokens.spend(s, "race", digest, LATER)
                time.sleep(0.05)  # keep the transaction open, so the others run into it
                s.commit()
                results.append(spent)
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=attempt) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sorted(results) == [False] * 7 + [True]
    assert len(query(db, UsedToken)) == 1


def test_the_export_download_spends_its_token_in_used_token(client, db, make_user, login):
    """The GDPR download token is recorded by its digest under "gdpr-export", not as a rate-limit event;
    the export itself leaves the table out (it names no account)."""
    user = make_user()
    login(user)
    link = client.post_form("/account/export", {"password": PASSWORD}).headers["location"]
    token = link.rsplit("/", 1)[1]
    assert client.get(link).status_code == 200
    assert client.get(link).status_code == 410
    [row] = query(db, UsedToken)
    assert row.purpose == gdpr.USED_PURPOSE and row.digest == hashlib.sha256(token.encode()).hexdigest()
    assert row.expires_at > utcnow() + dt.timedelta(minutes=gdpr.EXPORT_TOKEN_MINUTES)
    with new_session(db.engine) as s:
        keys = s.execute(select(RateLimitEvent.key)).scalars().all()
    assert not [k for k in keys if "export" in k or "reauth" in k]
    assert "used_token" not in {t.name for t, _c in gdpr.user_references()}


def test_mailed_links_are_spent_in_used_token(client, db, make_user, login, mailbox):
    """Opening a re-authentication link and using its confirmation are two spends ("reauth-link",
    "reauth-spent") of the link's digest."""
    from app.accounts import reauth
    from tests.app.test_reauth import ask_for_link, passwordless

    user = passwordless(make_user, login, db)
    link = ask_for_link(client, mailbox, user, "gdpr_export")
    assert client.get(link).status_code == 303
    assert client.get(link).status_code == 410
    token = re.sub(r"^.*/", "", link)
    digest = usedtokens.digest(token)
    assert [(r.purpose, r.digest) for r in query(db, UsedToken)] == [(reauth.LINK_USED, digest)]
    assert client.post_form("/account/export", {}).status_code == 303
    assert sorted(r.purpose for r in query(db, UsedToken)) == sorted([reauth.LINK_USED, reauth.SPENT])
    assert client.post_form("/account/export", {}).status_code == 400  # used up
