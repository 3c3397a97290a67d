"""Idempotent demo data for the core: pages and one account per role (development only)."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from app.database import utcnow
from app.models import Page, Role, User
from app.security import hash_password
from app.settings import Settings

DEMO_PASSWORD = "mitmachen-demo"  # noqa: S105 demo accounts, never in production
DEMO_USERS = [
    ("admin@example.org", "Ada Admin", Role.ADMIN),
    ("staff@example.org", "Stefan Stadtverwaltung", Role.STAFF),
    ("moderator@example.org", "Mona Moderation", Role.MODERATOR),
    ("resident@example.org", "Rita Bürgerin", Role.RESIDENT),
]


def ensure_rows(db: Session, model, rows: list[dict]) -> list[str]:
    """Insert the rows whose ``slug`` is not in the table yet (idempotent); returns what was added."""
    have = set(db.execute(select(model.slug)).scalars())
    added = []
    for position, row in enumerate(rows):
        if row["slug"] not in have:
            db.add(model(position=position, **row))
            added.append(f"{model.__tablename__} {row['slug']}")
    return added


def ensure_pages(db: Session) -> list[str]:
    from app.pages_defaults import PAGES

    keys = ("slug", "title_de", "title_en", "body_de", "body_en")
    return ensure_rows(db, Page, [dict(zip(keys, page, strict=True)) for page in PAGES])


def load(db: Session, settings: Settings) -> list[str]:
    done = ensure_pages(db)
    if settings.is_production:
        return done  # no well-known demo passwords on a production system
    for email, name, role in DEMO_USERS:
        if db.execute(select(User).where(User.email == email)).scalar_one_or_none() is None:
            db.add(
                User(
                    email=email,
                    display_name=name,
                    role=role.value,
                    password_hash=hash_password(DEMO_PASSWORD),
                    email_confirmed_at=utcnow(),
                    password_changed_at=utcnow(),
                )
            )
            done.append(f"user {email}")
    return done
