"""Idempotent demo and configuration data for theme areas and districts."""

from __future__ import annotations

from sqlalchemy import select
from sqlmodel import Session

from proposals.defaults import DISTRICTS, THEMES
from proposals.models import District, Theme


def load(db: Session, settings) -> list[str]:
    """Insert the default theme areas and districts that are missing (matched by slug)."""
    done: list[str] = []
    have = set(db.execute(select(Theme.slug)).scalars())
    for pos, (slug, de, en, desc_de, desc_en) in enumerate(THEMES):
        if slug not in have:
            db.add(
                Theme(
                    slug=slug,
                    name_de=de,
                    name_en=en,
                    description_de=desc_de,
                    description_en=desc_en,
                    position=pos,
                )
            )
            done.append(f"theme {slug}")
    have = set(db.execute(select(District.slug)).scalars())
    for pos, (slug, name) in enumerate(DISTRICTS):
        if slug not in have:
            db.add(District(slug=slug, name=name, position=pos))
            done.append(f"district {slug}")
    return done
