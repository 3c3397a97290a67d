"""Resident verification by the residents' register: letter codes and in-person checks (no HTTP here).

Registers (voting/verification_models.py):

- Staff upload an extract of the eligible-residents register: CSV, UTF-8 with or without byte-order mark,
  ``;`` or ``,`` separated, columns reference, postal code, birth year (a header row with these names, in
  German or English, is optional). Every problem is reported with its row; nothing is stored unless the
  whole file is correct (:func:`parse_register` in voting/register_import.py, :func:`create_register`).
  Or staff generate N codes without register data (:func:`generate_codes`): such a code verifies
  residence only (no age, no postal code).
- Each entry gets one letter code. Codes are 16 characters of Crockford base32 in four groups
  (``7KQ2-M9XD-4TNB-H3WC``): 80 bits from a keyed pseudorandom function (HMAC-SHA-256) under the
  register's 256-bit random seed (``secrets``), so they are unguessable and typeable on a letter. 80 bits
  rather than 128 (ASVS V11.5.1) is a documented choice: with the attempt limit per account and IP
  (``RATE_LIMIT_VERIFICATION``, default 10 per hour) and at most a few hundred thousand codes per city,
  the chance to hit any valid code is below 1 in 10^18 per attempt. Ambiguous characters are forgiven
  (O→0, I/L→1, case, spaces, dashes).
- Only a keyed hash of each code is stored (``code_hash``, HMAC under a key derived from SECRET_KEY); the
  printable codes can be derived again for the mail merge until staff delete the printing data, which
  also removes the plain references. Rotating SECRET_KEY invalidates unused codes and reference hashes.
- A resident enters the code once (:func:`redeem_code`): it binds to that account, cannot be used again,
  one code per account and register, and the account is verified with the entry's birth year and postal
  code (app/accounts/verification.py ``mark_verified``, method ``letter``). Failed attempts are logged
  (logger ``mitmachen.verification``, never the code) and counted by the rate limit.
- In person (:func:`verify_in_person`): staff at a citizen office find the register entry by its
  reference (exact match of the keyed hash) or check an identity document, and verify the account found
  by its e-mail address; the staff member's id is recorded. Staff cannot verify their own account.
- Retention (:func:`close_register`): when the linked process's voter links are destroyed (results final,
  ``lifecycle.destroy_links``) or staff close the register, the personal data is kept only hashed
  (``hash``: plain reference removed, keyed hash, postal code and birth year kept) or deleted
  (``delete``: reference, its hash, postal code and birth year removed), and the codes stop working.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import logging
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlmodel import Session

from app.accounts.verification import METHOD_IN_PERSON, METHOD_LETTER, mark_verified
from app.database import utcnow
from app.i18n import gettext as _
from app.models import User
from voting.register_import import (  # noqa: F401 (re-exported: the routes and tests use verification.*)
    MAX_BYTES,
    MAX_ROWS,
    POSTAL_CODE,
    REFERENCE_MAX,
    RegisterImport,
    RegisterProblem,
    RegisterRow,
    normalise_reference,
    parse_register,
)
from voting.verification_models import RegisterEntry, ResidentRegister, Retention

log = logging.getLogger("mitmachen.verification")
ENTRY_TABLE = RegisterEntry.__table__  # type: ignore[attr-defined]  (Core for bulk inserts and reads)

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_CHARS = 16  # 80 bits
CODE_GROUP = 4
MAX_GENERATE = 50_000
CONFUSABLE = str.maketrans({"O": "0", "I": "1", "L": "1"})
B32_TO_CROCKFORD = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", ALPHABET)


class VerificationError(Exception):
    """A refused verification step; ``code`` is stable (tests, logs), the message is for people."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


# --- keys, codes, references -------------------------------------------------------------------------


def _key(secret_key: str, purpose: str) -> bytes:
    return hmac.new(
        secret_key.encode(), f"mitmachen verification {purpose}".encode(), hashlib.sha256
    ).digest()


def reference_hash(secret_key: str, reference: str) -> str:
    """The keyed hash of a register reference (what stays after closing a ``hash`` register)."""
    ref = normalise_reference(reference)
    return hmac.digest(_key(secret_key, "reference"), ref.encode(), "sha256").hex()


def normalise_code(raw: str) -> str | None:
    """The 16 code characters of what a person typed (case, spaces, dashes and O/I/L forgiven), or None."""
    text = re.sub(r"[\s\-–—_.]", "", str(raw)).upper().translate(CONFUSABLE)
    if len(text) != CODE_CHARS or any(c not in ALPHABET for c in text):
        return None
    return text


def format_code(code: str) -> str:
    return "-".join(code[i : i + CODE_GROUP] for i in range(0, len(code), CODE_GROUP))


def code_hash(secret_key: str, code: str) -> str:
    return hmac.digest(_key(secret_key, "letter code"), code.encode(), "sha256").hex()


def derive_code(seed: bytes, position: int) -> str:
    """The letter code of entry ``position``: 80 bits of HMAC-SHA-256 under the register's random seed,
    written in Crockford base32 (16 characters)."""
    digest = hmac.digest(seed, f"code {position}".encode(), "sha256")
    return base64.b32encode(digest[:10]).decode("ascii").translate(B32_TO_CROCKFORD)


# --- creating registers ----------------------------------------------------------------------------------


def _check_retention(retention: str) -> str:
    if retention not in {r.value for r in Retention}:
        raise VerificationError("retention", _("Please choose what happens to the data after the process."))
    return retention


def _new_register(
    db: Session, *, name: str, retention: str, process_id: int | None, created_by: int | None, has_data: bool
) -> ResidentRegister:
    name = name.strip()
    if not name:
        raise VerificationError("name", _("Please give the register a name."))
    register = ResidentRegister(
        name=name[:200],
        retention=_check_retention(retention),
        process_id=process_id,
        created_by=created_by,
        has_data=has_data,
        code_seed=secrets.token_bytes(32),
    )
    db.add(register)
    db.flush()
    return register


def create_register(
    db: Session,
    *,
    secret_key: str,
    name: str,
    retention: str,
    parsed: RegisterImport,
    process_id: int | None = None,
    created_by: int | None = None,
) -> ResidentRegister:
    """A register with one entry (and letter code) per row of a correct extract."""
    if not parsed.ok:
        raise VerificationError("invalid", _("The register file has problems; nothing was stored."))
    register = _new_register(
        db, name=name, retention=retention, process_id=process_id, created_by=created_by, has_data=True
    )
    assert register.id is not None and register.code_seed is not None
    code_key, ref_key = _key(secret_key, "letter code"), _key(secret_key, "reference")
    rows = []
    register_id, seed = register.id, register.code_seed
    for position, row in enumerate(parsed.rows, 1):
        code = derive_code(seed, position)
        ref = normalise_reference(row.reference)
        rows.append(
            {
                "register_id": register_id,
                "position": position,
                "reference": ref,
                "reference_hash": hmac.digest(ref_key, ref.encode(), "sha256").hex(),
                "postal_code": row.postal_code,
                "birth_year": row.birth_year,
                "code_hash": hmac.digest(code_key, code.encode(), "sha256").hex(),
            }
        )
    for start in range(0, len(rows), 5000):
        db.execute(ENTRY_TABLE.insert(), rows[start : start + 5000])
    log.info("register %s created by %s: %s entries", register.id, created_by, len(rows))
    return register


def generate_codes(
    db: Session,
    *,
    secret_key: str,
    name: str,
    count: int,
    process_id: int | None = None,
    created_by: int | None = None,
) -> ResidentRegister:
    """N letter codes without register data (they verify residence only: no birth year, no postal code)."""
    if not (1 <= count <= MAX_GENERATE):
        raise VerificationError(
            "count", _("Please give a number of codes between 1 and %(n)s.", n=MAX_GENERATE)
        )
    register = _new_register(
        db,
        name=name,
        retention=Retention.DELETE.value,
        process_id=process_id,
        created_by=created_by,
        has_data=False,
    )
    assert register.id is not None and register.code_seed is not None
    code_key = _key(secret_key, "letter code")
    rows = [
        {
            "register_id": register.id,
            "position": position,
            "code_hash": hmac.digest(
                code_key, derive_code(register.code_seed, position).encode(), "sha256"
            ).hex(),
        }
        for position in range(1, count + 1)
    ]
    for start in range(0, len(rows), 5000):
        db.execute(ENTRY_TABLE.insert(), rows[start : start + 5000])
    log.info("register %s: %s codes generated by %s", register.id, count, created_by)
    return register


# --- printing ----------------------------------------------------------------------------------------


@dataclass
class Letter:
    position: int
    reference: str
    postal_code: str
    birth_year: int | None
    code: str  # formatted, with dashes
    used: bool


def letters(
    db: Session, register: ResidentRegister, *, offset: int = 0, limit: int | None = None
) -> Iterator[Letter]:
    """The letter codes of a register for printing (only while the printing data exists)."""
    if not register.can_print or register.code_seed is None:
        raise VerificationError("no_printing", _("The printing data of this register has been deleted."))
    seed = register.code_seed
    t = ENTRY_TABLE.c
    query = (
        select(t.position, t.reference, t.postal_code, t.birth_year, t.used_at)
        .where(t.register_id == register.id)
        .order_by(t.position)
        .offset(offset)
    )
    if limit is not None:
        query = query.limit(limit)
    for position, reference, postal_code, birth_year, used_at in db.execute(query):
        yield Letter(
            position,
            reference or "",
            postal_code or "",
            birth_year,
            format_code(derive_code(seed, position)),
            used_at is not None,
        )


def letters_csv(db: Session, register: ResidentRegister) -> Iterator[str]:
    """The mail-merge file: one row per letter (reference; postal code; birth year; code), UTF-8 with BOM."""
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    out.write("\ufeff")
    writer.writerow(["number", "reference", "postal_code", "birth_year", "code"])
    for n, letter in enumerate(letters(db, register), 1):
        writer.writerow(
            [letter.position, letter.reference, letter.postal_code, letter.birth_year or "", letter.code]
        )
        if n % 1000 == 0:
            yield out.getvalue()
            out.seek(0)
            out.truncate()
    yield out.getvalue()


def delete_printing_data(db: Session, register: ResidentRegister, *, staff_id: int | None) -> None:
    """After the letters are printed: forget the seed (codes can no longer be derived) and the plain
    references (only their keyed hashes stay for the in-person search)."""
    register.code_seed = None
    register.printing_data_deleted_at = utcnow()
    db.add(register)
    db.execute(update(RegisterEntry).where(RegisterEntry.register_id == register.id).values(reference=None))
    db.flush()
    log.info("register %s: printing data deleted by %s", register.id, staff_id)


# --- retention ----------------------------------------------------------------------------------------


def close_register(db: Session, register: ResidentRegister, *, staff_id: int | None = None) -> None:
    """Stop the codes and apply the register's retention to its personal data (idempotent)."""
    values: dict[str, Any] = {"reference": None}
    if register.retention == Retention.DELETE.value:
        values.update(reference_hash=None, postal_code=None, birth_year=None)
    db.execute(update(RegisterEntry).where(RegisterEntry.register_id == register.id).values(**values))
    if register.closed_at is None:
        register.closed_at = utcnow()
    register.code_seed = None
    if register.printing_data_deleted_at is None:
        register.printing_data_deleted_at = register.closed_at
    db.add(register)
    db.flush()
    log.info("register %s closed (retention %s) by %s", register.id, register.retention, staff_id or "system")


def close_registers_of_process(db: Session, process_id: int) -> int:
    """Close every open register linked to a process (its results are final); returns how many."""
    registers = (
        db.execute(
            select(ResidentRegister).where(
                ResidentRegister.process_id == process_id,
                ResidentRegister.closed_at.is_(None),  # type: ignore[union-attr]
            )
        )
        .scalars()
        .all()
    )
    for register in registers:
        close_register(db, register)
    return len(registers)


# --- redeeming a letter code ---------------------------------------------------------------------------


def _locked_entry(db: Session, query) -> RegisterEntry | None:
    if db.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return db.execute(query).scalars().first()


def redeem_code(db: Session, *, secret_key: str, user: User, raw_code: str, ip: str = "") -> RegisterEntry:
    """Bind a letter code to ``user`` and verify the account. Raises VerificationError (``malformed``,
    ``unknown``, ``used``, ``closed``, ``same_register``); every refusal is logged without the code."""

    def refuse(code: str, message: str) -> VerificationError:
        log.warning("letter code refused: reason=%s user=%s ip=%s", code, user.id, ip or "-")
        return VerificationError(code, message)

    code = normalise_code(raw_code)
    if code is None:
        raise refuse(
            "malformed",
            _("A letter code has 16 letters and digits, e.g. 7KQ2-M9XD-4TNB-H3WC. Please check your input."),
        )
    entry = _locked_entry(
        db, select(RegisterEntry).where(RegisterEntry.code_hash == code_hash(secret_key, code))
    )
    if entry is None:
        raise refuse("unknown", _("This code is not valid. Please check your input."))
    register = db.get(ResidentRegister, entry.register_id)
    if register is None or register.is_closed:
        raise refuse("closed", _("This code is no longer valid: the verification for it has ended."))
    if entry.is_used:
        if entry.used_by_user_id == user.id:
            raise refuse("used", _("You have already used this code; your residence is verified."))
        raise refuse(
            "used",
            _(
                "This code has already been used. If you did not use it yourself, please contact the "
                "citizen office."
            ),
        )
    other = db.execute(
        select(func.count(RegisterEntry.id)).where(
            RegisterEntry.register_id == register.id, RegisterEntry.used_by_user_id == user.id
        )
    ).scalar_one()
    if other:
        raise refuse(
            "same_register", _("Your account has already been verified with another code of this letter run.")
        )
    entry.used_by_user_id = user.id
    entry.used_at = utcnow()
    db.add(entry)
    db.flush()
    mark_verified(
        db,
        user,
        method=METHOD_LETTER,
        birth_year=entry.birth_year,
        postal_code=entry.postal_code,
        reference_hash=entry.reference_hash,
    )
    log.info("letter code redeemed: register=%s user=%s", register.id, user.id)
    return entry


# --- in person ---------------------------------------------------------------------------------------


@dataclass
class Found:
    entry: RegisterEntry
    register: ResidentRegister
    used_by: User | None


def find_by_reference(db: Session, *, secret_key: str, reference: str) -> list[Found]:
    """Entries of open registers whose reference matches exactly (compared as keyed hashes)."""
    if not reference.strip():
        return []
    ref = reference_hash(secret_key, reference)
    rows = db.execute(
        select(RegisterEntry, ResidentRegister)
        .join(ResidentRegister, ResidentRegister.id == RegisterEntry.register_id)  # type: ignore[arg-type]
        .where(RegisterEntry.reference_hash == ref, ResidentRegister.closed_at.is_(None))  # type: ignore[union-attr]
        .order_by(RegisterEntry.id)
    ).all()
    return [Found(e, r, db.get(User, e.used_by_user_id) if e.used_by_user_id else None) for e, r in rows]


def find_account(db: Session, email: str) -> User | None:
    email = email.strip().lower()
    if not email:
        return None
    user = db.execute(select(User).where(func.lower(User.email) == email)).scalars().first()
    return None if user is None or user.is_deleted else user


def verify_in_person(
    db: Session,
    *,
    secret_key: str,
    staff: User,
    user: User,
    entry_id: int | None = None,
    birth_date: Any = None,
    postal_code: str | None = None,
) -> None:
    """Verify ``user`` at the citizen office, from a register entry (its birth year and postal code) or an
    identity document (birth date and postal code given by staff). Records the staff member."""
    if user.id == staff.id:
        raise VerificationError("self", _("You cannot verify your own account. Please ask a colleague."))
    if user.is_deleted:
        raise VerificationError("account", _("This account has been deleted."))
    if (
        postal_code is not None
        and postal_code.strip()
        and not POSTAL_CODE.match("".join(postal_code.split()))
    ):
        raise VerificationError("postal_code", _("The postal code must be five digits."))
    postal_code = "".join(postal_code.split()) if postal_code else None
    if entry_id is not None:
        entry = _locked_entry(db, select(RegisterEntry).where(RegisterEntry.id == entry_id))
        register = db.get(ResidentRegister, entry.register_id) if entry is not None else None
        if entry is None or register is None or register.is_closed or not register.has_data:
            raise VerificationError("unknown", _("This register entry does not exist (any more)."))
        if entry.is_used and entry.used_by_user_id != user.id:
            raise VerificationError(
                "used", _("This register entry has already been used for another account.")
            )
        if birth_date is not None and entry.birth_year is not None and birth_date.year != entry.birth_year:
            raise VerificationError(
                "birth_year", _("The date of birth does not match the birth year in the register.")
            )
        clash = db.execute(
            select(func.count(RegisterEntry.id)).where(
                RegisterEntry.register_id == register.id,
                RegisterEntry.used_by_user_id == user.id,
                RegisterEntry.id != entry.id,
            )
        ).scalar_one()
        if clash:
            raise VerificationError(
                "same_register",
                _("This account has already been verified with another entry of this register."),
            )
        entry.used_by_user_id = user.id
        entry.used_at = entry.used_at or utcnow()
        entry.verified_by = staff.id
        db.add(entry)
        db.flush()
        mark_verified(
            db,
            user,
            method=METHOD_IN_PERSON,
            birth_date=birth_date,
            birth_year=None if birth_date is not None else entry.birth_year,
            postal_code=postal_code or entry.postal_code,
            reference_hash=entry.reference_hash,
            verified_by=staff.id,
        )
    else:
        if birth_date is None or not postal_code:
            raise VerificationError(
                "document",
                _(
                    "Without a register entry, please enter the date of birth and the postal code "
                    "from the identity document."
                ),
            )
        mark_verified(
            db,
            user,
            method=METHOD_IN_PERSON,
            birth_date=birth_date,
            postal_code=postal_code,
            verified_by=staff.id,
        )
    log.info("verified in person: user=%s staff=%s entry=%s", user.id, staff.id, entry_id or "-")


# --- overview ----------------------------------------------------------------------------------------


@dataclass
class RegisterSummary:
    register: ResidentRegister
    entries: int
    used: int


def registers(db: Session) -> list[RegisterSummary]:
    counts = {
        rid: (total, used or 0)
        for rid, total, used in db.execute(
            select(
                RegisterEntry.register_id, func.count(RegisterEntry.id), func.count(RegisterEntry.used_at)
            ).group_by(RegisterEntry.register_id)
        )
    }
    rows = db.execute(select(ResidentRegister).order_by(ResidentRegister.id.desc())).scalars().all()  # type: ignore[union-attr]
    return [RegisterSummary(r, *counts.get(r.id, (0, 0))) for r in rows]


def summary(db: Session, register: ResidentRegister) -> RegisterSummary:
    total, used = db.execute(
        select(func.count(RegisterEntry.id), func.count(RegisterEntry.used_at)).where(
            RegisterEntry.register_id == register.id
        )
    ).one()
    return RegisterSummary(register, total, used or 0)
