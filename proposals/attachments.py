"""Attachments: PDF, JPEG and PNG files checked by content, stored outside the web root under random names.

Checks (ASVS V5.2.1, V5.2.2, V5.3.2): size ≤ UPLOAD_MAX_MB, at most ``MAX_PER_PROPOSAL`` per proposal, the
magic bytes must be a PDF/JPEG/PNG *and* agree with the file name's extension (a PNG named .pdf is refused),
images must decode completely with Pillow (corrupt or truncated images are refused, decompression bombs
too). All files of a request are checked before any is written. The original name is kept only for
display and for Content-Disposition, sanitised here and escaped by the templates (CVE-2023-51447).

Files are written when the row is added and removed again if the transaction rolls back; deleted
attachments' files are removed only after the transaction commits.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import secrets
import unicodedata
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from PIL import Image, UnidentifiedImageError
from sqlalchemy import event, func, select
from sqlmodel import Session

from app.database import utcnow
from app.i18n import gettext as _
from app.models import User
from app.settings import Settings
from proposals.lifecycle import ProposalError
from proposals.models import Attachment, Proposal
from proposals.visibility import public_attachment

MAX_PER_PROPOSAL = 5
MAX_IMAGE_PIXELS = 40_000_000
KINDS = {  # content type: (extensions, magic prefix)
    "application/pdf": ((".pdf",), b"%PDF-"),
    "image/jpeg": ((".jpg", ".jpeg"), b"\xff\xd8\xff"),
    "image/png": ((".png",), b"\x89PNG\r\n\x1a\n"),
}
PIL_FORMATS = {"image/jpeg": "JPEG", "image/png": "PNG"}
_UNSAFE_NAME = re.compile(r"[\x00-\x1f\x7f/\\]")


@dataclass(frozen=True)
class Upload:
    """A checked file, ready to store."""

    name: str
    content_type: str
    data: bytes


def clean_filename(name: str) -> str:
    """A display name: last path component, NFC, no control characters or slashes, at most 200 chars
    with the extension kept. Markup characters stay as they are: templates escape them."""
    name = unicodedata.normalize("NFC", name or "")
    name = re.split(r"[/\\]", name)[-1]
    name = _UNSAFE_NAME.sub("", name).strip().strip(".") or "file"
    if len(name) > 200:
        stem, dot, ext = name.rpartition(".")
        name = (stem[: 199 - len(ext)] + dot + ext) if dot and len(ext) <= 10 else name[:200]
    return name


def _sniff(data: bytes) -> str | None:
    for content_type, (_exts, magic) in KINDS.items():
        if data.startswith(magic):
            return content_type
    return None


def _check_image(data: bytes, content_type: str) -> bool:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                if probe.format != PIL_FORMATS[content_type]:
                    return False
                if probe.width * probe.height > MAX_IMAGE_PIXELS:
                    return False
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # decodes every pixel: truncated or corrupt data raises
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError, Warning):
        return False
    return True


def _check_pdf(data: bytes) -> bool:
    return b"%%EOF" in data[-2048:]


def check_file(name: str, data: bytes, *, settings: Settings) -> Upload:
    """Validate one uploaded file; raises ProposalError(field="attachments") naming the file."""
    display = clean_filename(name)
    limit = settings.upload_max_mb * 1024 * 1024
    if len(data) > limit:
        raise ProposalError(
            _("%(name)s is larger than %(mb)s MB.", name=display, mb=settings.upload_max_mb), "attachments"
        )
    if not data:
        raise ProposalError(_("%(name)s is empty.", name=display), "attachments")
    content_type = _sniff(data)
    extension = os.path.splitext(display)[1].lower()
    if content_type is None or extension not in KINDS[content_type][0]:
        raise ProposalError(
            _(
                "%(name)s is not a PDF, JPEG or PNG file (or its name does not match its content).",
                name=display,
            ),
            "attachments",
        )
    valid = _check_pdf(data) if content_type == "application/pdf" else _check_image(data, content_type)
    if not valid:
        raise ProposalError(_("%(name)s is damaged or cannot be read.", name=display), "attachments")
    return Upload(name=display, content_type=content_type, data=data)


def check_uploads(files: list[Any], *, settings: Settings, existing: int = 0) -> list[Upload]:
    """Check the ``UploadFile``s of a form (empty file inputs are skipped); all or nothing."""
    chosen = [f for f in files if hasattr(f, "filename") and hasattr(f, "file") and (f.filename or f.size)]
    if existing + len(chosen) > MAX_PER_PROPOSAL:
        raise ProposalError(
            _("A proposal can have at most %(n)s attachments.", n=MAX_PER_PROPOSAL), "attachments"
        )
    limit = settings.upload_max_mb * 1024 * 1024
    uploads = []
    for f in chosen:
        f.file.seek(0)
        data = f.file.read(limit + 1)
        uploads.append(check_file(f.filename or "", data, settings=settings))
    return uploads


def count_for(db: Session, *, proposal: Proposal) -> int:
    stmt = select(func.count()).select_from(Attachment).where(Attachment.proposal_id == proposal.id)
    return db.execute(stmt).scalar_one()


def list_for(db: Session, *, proposal: Proposal) -> list[Attachment]:
    stmt = (
        select(Attachment)
        .where(Attachment.proposal_id == proposal.id, public_attachment())
        .order_by(Attachment.id)
    )
    return list(db.execute(stmt).scalars())


def storage_path(settings: Settings, attachment: Attachment) -> Path:
    if not re.fullmatch(r"[0-9a-f]{32}", attachment.storage_name):
        raise ValueError("invalid storage name")
    return settings.upload_dir / attachment.storage_name


def _files(db: Session) -> tuple[list[Path], list[Path]]:
    """Per-session lists of files written and files to delete, settled when the transaction ends."""
    if "attachments.files" not in db.info:
        written: list[Path] = []
        doomed: list[Path] = []
        db.info["attachments.files"] = (written, doomed)

        def committed(_session) -> None:
            for path in doomed:
                path.unlink(missing_ok=True)
            written.clear()
            doomed.clear()

        def rolled_back(_session) -> None:
            for path in written:
                path.unlink(missing_ok=True)
            written.clear()
            doomed.clear()

        event.listen(db, "after_commit", committed)
        event.listen(db, "after_rollback", rolled_back)
    return db.info["attachments.files"]


def store(
    db: Session, *, proposal: Proposal, uploader: User, uploads: list[Upload], settings: Settings
) -> list[Attachment]:
    """Write the checked files and their rows; files vanish again if the transaction rolls back."""
    if not uploads:
        return []
    if count_for(db, proposal=proposal) + len(uploads) > MAX_PER_PROPOSAL:
        raise ProposalError(
            _("A proposal can have at most %(n)s attachments.", n=MAX_PER_PROPOSAL), "attachments"
        )
    settings.upload_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    rows = []
    for upload in uploads:
        row = Attachment(
            proposal_id=proposal.id,
            uploader_id=uploader.id,
            storage_name=secrets.token_hex(16),
            original_name=upload.name,
            content_type=upload.content_type,
            size=len(upload.data),
            sha256=hashlib.sha256(upload.data).hexdigest(),
            created_at=utcnow(),
        )
        path = storage_path(settings, row)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "wb") as fh:
            fh.write(upload.data)
        _files(db)[0].append(path)
        db.add(row)
        rows.append(row)
    db.flush()
    return rows


def delete_attachment(db: Session, *, attachment: Attachment, settings: Settings) -> None:
    """Delete the row now and the file once the transaction has committed."""
    path = storage_path(settings, attachment)
    db.delete(attachment)
    db.flush()
    _files(db)[1].append(path)


def attachment_of(db: Session, *, proposal: Proposal, attachment_id: int) -> Attachment | None:
    """The attachment only if it belongs to ``proposal`` (no cross-proposal access by id)."""
    stmt = select(Attachment).where(
        Attachment.id == attachment_id, Attachment.proposal_id == proposal.id, public_attachment()
    )
    return db.execute(stmt).scalar_one_or_none()


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII fallback and the RFC 5987 UTF-8 ``filename*``."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", ascii_name).strip() or "download"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name, safe='')}"


def download_headers(attachment: Attachment) -> dict[str, str]:
    return {
        "Content-Disposition": content_disposition(attachment.original_name),
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
        "Cross-Origin-Resource-Policy": "same-origin",
        "Cache-Control": "private, no-store",
    }
