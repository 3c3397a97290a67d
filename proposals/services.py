"""Theme and district use cases."""

from __future__ import annotations

import re

from sqlalchemy import func, select
from sqlmodel import Session

from app.models import User
from proposals.models import District, Theme


class ConfigError(Exception):
    def __init__(self, message: str, field: str = "__all__"):
        super().__init__(message)
        self.field = field


def themes(db: Session, *, include_inactive: bool = False) -> list[Theme]:
    stmt = select(Theme).order_by(Theme.position, Theme.id)
    if not include_inactive:
        stmt = stmt.where(Theme.is_active)
    return list(db.execute(stmt).scalars())


def districts(db: Session, *, include_inactive: bool = False) -> list[District]:
    stmt = select(District).order_by(District.position, District.name)
    if not include_inactive:
        stmt = stmt.where(District.is_active)
    return list(db.execute(stmt).scalars())


def district_choices(db: Session) -> list[tuple[int, str]]:
    return [(d.id, d.name) for d in districts(db)]


def theme_by_slug(db: Session, slug: str) -> Theme | None:
    return db.execute(select(Theme).where(Theme.slug == slug)).scalar_one_or_none()


def slugify(text: str) -> str:
    table = str.maketrans({"ä": "ae", "ö": "oe", "ü": "ue", "ß": "ss", "Ä": "ae", "Ö": "oe", "Ü": "ue"})
    slug = re.sub(r"[^a-z0-9]+", "-", text.translate(table).lower()).strip("-")
    return slug[:64] or "x"


def _unique_slug(db: Session, model, slug: str, exclude_id: int | None) -> None:
    stmt = select(func.count()).select_from(model).where(model.slug == slug)
    if exclude_id is not None:
        stmt = stmt.where(model.id != exclude_id)
    if db.execute(stmt).scalar_one():
        from app.i18n import gettext as _

        raise ConfigError(_("This short name is already in use."), "slug")


def save_theme(
    db: Session,
    *,
    theme: Theme | None,
    slug: str,
    name_de: str,
    name_en: str,
    description_de: str,
    description_en: str,
    position: int,
    is_active: bool,
) -> Theme:
    _unique_slug(db, Theme, slug, theme.id if theme else None)
    theme = theme or Theme(slug=slug, name_de=name_de, name_en=name_en)
    theme.slug, theme.name_de, theme.name_en = slug, name_de, name_en
    theme.description_de, theme.description_en = description_de, description_en
    theme.position, theme.is_active = position, is_active
    db.add(theme)
    db.flush()
    return theme


def save_district(
    db: Session, *, district: District | None, slug: str, name: str, position: int, is_active: bool
) -> District:
    _unique_slug(db, District, slug, district.id if district else None)
    district = district or District(slug=slug, name=name)
    district.slug, district.name, district.position, district.is_active = slug, name, position, is_active
    db.add(district)
    db.flush()
    return district


def theme_and_district(db: Session, *, proposal) -> tuple[Theme, District | None, User | None]:
    """The theme area, district and author of a proposal page."""
    theme = db.get(Theme, proposal.theme_id)
    district = db.get(District, proposal.district_id) if proposal.district_id else None
    return theme, district, db.get(User, proposal.author_id)
