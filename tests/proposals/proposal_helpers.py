"""Factories and sample files for the proposal tests (proposals, supports, search, attachments, listing)."""

from __future__ import annotations

import io
from typing import Any

from PIL import Image
from sqlalchemy import select

from app.database import new_session
from app.models import User
from proposals import lifecycle
from proposals.models import District, Proposal, ProposalStatus, Theme

BODY = "Die **Beleuchtung** am Weg ist seit Monaten defekt.\n\n- Lampe 1\n- Lampe 2"


def theme(db, index: int = 0) -> Theme:
    with new_session(db.engine) as s:
        return list(s.execute(select(Theme).order_by(Theme.position)).scalars())[index]


def district(db, index: int = 0) -> District:
    with new_session(db.engine) as s:
        return list(s.execute(select(District).order_by(District.position)).scalars())[index]


def form_data(db, **overrides: Any) -> dict[str, str]:
    """A valid proposal form (as posted by a browser)."""
    data = {
        "title": "Mehr Licht im Nordpark",
        "summary": "Neue Laternen für den Weg am Teich.",
        "body": BODY,
        "theme": str(theme(db).id),
        "district": "",
        "address": "",
        "lat": "",
        "lon": "",
        "cost": "",
    }
    data.update({k: str(v) for k, v in overrides.items()})
    return data


def make_proposal(
    db,
    author: User,
    *,
    status: str = ProposalStatus.PUBLISHED,
    title: str = "Mehr Licht im Nordpark",
    summary: str = "Neue Laternen für den Weg am Teich.",
    body: str = BODY,
    theme_index: int = 0,
    district_index: int | None = None,
    staff: User | None = None,
    **extra: Any,
) -> Proposal:
    """A proposal in ``status``, reached through the real lifecycle steps (``staff`` makes the staff steps)."""
    with new_session(db.engine) as s:
        author = s.get(User, author.id)
        data = lifecycle.ProposalData(
            title=title,
            summary=summary,
            body=body,
            theme=theme(db, theme_index).id,
            district=district(db, district_index).id if district_index is not None else None,
            **extra,
        )
        p = lifecycle.create_proposal(s, author=author, data=data, publish=status != ProposalStatus.DRAFT)
        path = {
            "under_review": ["under_review"],
            "accepted": ["under_review", "accepted"],
            "rejected": ["under_review", "rejected"],
            "implemented": ["under_review", "accepted", "implemented"],
        }.get(str(status), [])
        for step in path:
            actor = s.get(User, staff.id) if staff else author
            lifecycle.change_status(
                s, proposal=p, actor=actor, to_status=step, reason="Begründung", by_staff=True
            )
        if status == ProposalStatus.WITHDRAWN:
            lifecycle.change_status(s, proposal=p, actor=author, to_status="withdrawn")
        s.commit()
        s.refresh(p)
        return p


def get(db, proposal_id: int) -> Proposal:
    with new_session(db.engine) as s:
        return s.get(Proposal, proposal_id)


def png_bytes(size: tuple[int, int] = (8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (200, 30, 30)).save(buf, "PNG")
    return buf.getvalue()


def jpeg_bytes(size: tuple[int, int] = (8, 8)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, (30, 30, 200)).save(buf, "JPEG")
    return buf.getvalue()


def pdf_bytes(pad: int = 0) -> bytes:
    return (
        b"%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R >> endobj\n"
        b"2 0 obj << /Type /Pages /Kids [] /Count 0 >> endobj\n"
        + b"% "
        + b"x" * pad
        + b"\n"
        + b"trailer << /Root 1 0 R >>\n%%EOF\n"
    )
