"""Resident verification pages: the resident enters a letter code (/account/verify); staff manage the
registers and letter codes and verify residents in person (/staff/verification, permission
``staff.verification``). Handlers load their object (unknown id → 404), check one named permission and
call one service of voting/verification.py. Code downloads are ``no-store``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlmodel import Session, select
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from app.forms import FieldError, Form
from app.i18n import gettext as _
from app.models import User
from app.permissions import is_staff, register, require
from app.security import safe_next
from app.web import client_ip, flash, form_of, rate_limit, redirect, render, settings_of, view
from voting import verification as svc
from voting.models import Process
from voting.verification_models import RegisterEntry, ResidentRegister, Retention

register(
    "staff.verification",
    is_staff,
    "Staff: residents' registers and letter codes, in-person verification of residents",
)

MAX_ID = 2**31 - 1
PRINT_PAGE = 200
NO_STORE = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}


def _secret(request: Request) -> str:
    return settings_of(request).secret_key


def _id(raw: Any) -> int | None:
    text = str(raw or "").strip()
    return int(text) if text.isdigit() and 0 < int(text) <= MAX_ID else None


def _register(request: Request, db: Session) -> ResidentRegister:
    """The register of the path (404), for staff only (403 first, so ids are not probed)."""
    require(request, "staff.verification")
    rid = request.path_params["register_id"]
    found = db.get(ResidentRegister, rid) if rid <= MAX_ID else None
    if found is None:
        raise HTTPException(404)
    return found


# --- forms ---------------------------------------------------------------------------------------------


class CodeForm(Form):
    fields = ("code", "next")

    def clean_code(self, value: str) -> str:
        if not value:
            raise FieldError(_("Please enter the code from your letter."))
        return value[:100]


class _RegisterForm(Form):
    def __init__(self, data=None, initial=None, *, processes: list[tuple[int, str]] = ()):
        super().__init__(data, initial)
        self.processes = dict(processes)

    def clean_name(self, value: str) -> str:
        if not value:
            raise FieldError(_("Please give the register a name."))
        if len(value) > 200:
            raise FieldError(_("At most 200 characters."))
        return value

    def clean_process_id(self, value: str) -> int | None:
        if not value:
            return None
        pid = _id(value)
        if pid is None or pid not in self.processes:
            raise FieldError(_("Please choose one of the options."))
        return pid


class UploadForm(_RegisterForm):
    fields = ("name", "retention", "process_id")

    def clean_retention(self, value: str) -> str:
        if value not in {r.value for r in Retention}:
            raise FieldError(_("Please choose what happens to the data after the process."))
        return value


class GenerateForm(_RegisterForm):
    fields = ("name", "count", "process_id")

    def clean_count(self, value: str) -> int:
        if not value.isdigit() or not (1 <= int(value) <= svc.MAX_GENERATE):
            raise FieldError(_("Please give a number of codes between 1 and %(n)s.", n=svc.MAX_GENERATE))
        return int(value)


class InPersonForm(Form):
    fields = ("user_id", "entry_id", "birth_date", "postal_code")

    def clean_user_id(self, value: str) -> int:
        uid = _id(value)
        if uid is None:
            raise FieldError(_("Please find the account first."))
        return uid

    def clean_entry_id(self, value: str) -> int | None:
        if not value:
            return None
        eid = _id(value)
        if eid is None:
            raise FieldError(_("Please choose one of the options."))
        return eid

    def clean_birth_date(self, value: str) -> dt.date | None:
        if not value:
            return None
        try:
            day = dt.date.fromisoformat(value)
        except ValueError as exc:
            raise FieldError(_("Please enter the date as YYYY-MM-DD.")) from exc
        if not (dt.date(1900, 1, 1) <= day <= dt.date.today()):
            raise FieldError(_("Please enter a real date of birth."))
        return day

    def clean_postal_code(self, value: str) -> str | None:
        value = "".join(value.split())
        if value and not svc.POSTAL_CODE.match(value):
            raise FieldError(_("The postal code must be five digits."))
        return value or None


# --- the resident -----------------------------------------------------------------------------------------


def _verify_page(request: Request, form: CodeForm, status: int = 200) -> Response:
    return render(request, "voting/verification_resident.html", status, form=form)


@view
def resident_verify(request: Request, db: Session) -> Response:
    """The resident's verification status and the letter-code form (ASVS V2.4.1 via the rate limit)."""
    user = require(request, "account.view")
    next_url = safe_next(request.query_params.get("next") or form_of(request).get("next"), "/account/verify")
    if request.method == "GET":
        return _verify_page(request, CodeForm(initial={"next": next_url}))
    form = CodeForm(form_of(request), initial={"next": next_url})
    if not form.is_valid():
        return _verify_page(request, form, 400)
    rate_limit(request, db, "verification", str(user.id))
    try:
        svc.redeem_code(
            db, secret_key=_secret(request), user=user, raw_code=form.cleaned["code"], ip=client_ip(request)
        )
    except svc.VerificationError as exc:
        form.add_error("code", exc.message)
        return _verify_page(request, form, 400)
    flash(request, _("Thank you: your residence is verified."))
    return redirect(next_url)


# --- staff: registers ---------------------------------------------------------------------------------


def _processes(db: Session) -> list[tuple[int, str]]:
    rows = db.exec(select(Process).order_by(Process.id.desc())).all()  # type: ignore[union-attr]
    return [(p.id, p.title) for p in rows if p.id is not None]


def _staff_page(
    request: Request,
    db: Session,
    status: int = 200,
    *,
    upload_form: UploadForm | None = None,
    generate_form: GenerateForm | None = None,
    parsed: svc.RegisterImport | None = None,
) -> Response:
    processes = _processes(db)
    return render(
        request,
        "voting/verification_staff.html",
        status,
        registers=svc.registers(db),
        processes=processes,
        process_names=dict(processes),
        upload_form=upload_form
        or UploadForm(initial={"retention": Retention.HASH.value}, processes=processes),
        generate_form=generate_form or GenerateForm(initial={"count": "100"}, processes=processes),
        parsed=parsed,
        retentions=_retentions(),
    )


def _retentions() -> list[tuple[str, str]]:
    return [
        (
            Retention.HASH.value,
            _("Keep the reference only as a keyed hash (postal code and birth year stay)"),
        ),
        (Retention.DELETE.value, _("Delete the reference, postal code and birth year")),
    ]


@view
def staff_overview(request: Request, db: Session) -> Response:
    require(request, "staff.verification")
    return _staff_page(request, db)


@view(long=True)
def staff_upload(request: Request, db: Session) -> Response:
    """Upload a register extract: per-row problems (400, nothing stored) or one letter code per row."""
    user = require(request, "staff.verification")
    data = form_of(request)
    processes = _processes(db)
    form = UploadForm(data, processes=processes)
    valid = form.is_valid()
    upload = data.get("file")
    if upload is None or isinstance(upload, str) or not getattr(upload, "filename", ""):
        form.add_error("file", _("Please choose a CSV file."))
        return _staff_page(request, db, 400, upload_form=form)
    parsed = svc.parse_register(upload.file.read(svc.MAX_BYTES + 1))
    if not valid or not parsed.ok:
        return _staff_page(request, db, 400, upload_form=form, parsed=parsed)
    created = svc.create_register(
        db,
        secret_key=_secret(request),
        name=form.cleaned["name"],
        retention=form.cleaned["retention"],
        parsed=parsed,
        process_id=form.cleaned["process_id"],
        created_by=user.id,
    )
    flash(
        request,
        _("%(n)s letter codes have been created. Please download them for printing.", n=len(parsed.rows)),
    )
    return redirect(f"/staff/verification/registers/{created.id}")


@view
def staff_generate(request: Request, db: Session) -> Response:
    user = require(request, "staff.verification")
    form = GenerateForm(form_of(request), processes=_processes(db))
    if not form.is_valid():
        return _staff_page(request, db, 400, generate_form=form)
    created = svc.generate_codes(
        db,
        secret_key=_secret(request),
        name=form.cleaned["name"],
        count=form.cleaned["count"],
        process_id=form.cleaned["process_id"],
        created_by=user.id,
    )
    flash(
        request,
        _(
            "%(n)s letter codes have been created. Please download them for printing.",
            n=form.cleaned["count"],
        ),
    )
    return redirect(f"/staff/verification/registers/{created.id}")


@view
def staff_register(request: Request, db: Session) -> Response:
    reg = _register(request, db)
    require(request, "staff.verification", reg)
    process = db.get(Process, reg.process_id) if reg.process_id else None
    creator = db.get(User, reg.created_by) if reg.created_by else None
    return render(
        request,
        "voting/verification_register.html",
        summary=svc.summary(db, reg),
        register=reg,
        process=process,
        creator=creator,
        print_pages=range(1, (svc.summary(db, reg).entries + PRINT_PAGE - 1) // PRINT_PAGE + 1),
    )


@view(long=True)
def staff_letters_csv(request: Request, db: Session) -> Response:
    """The mail-merge file (no-store; logged)."""
    reg = _register(request, db)
    user = require(request, "staff.verification", reg)
    if not reg.can_print:
        raise HTTPException(404)
    svc.log.info("register %s: letter codes downloaded by %s", reg.id, user.id)
    chunks = list(svc.letters_csv(db, reg))  # read inside the unit of work
    headers = dict(NO_STORE)
    headers["Content-Disposition"] = f'attachment; filename="letter-codes-{reg.id}.csv"'
    return StreamingResponse(iter(chunks), media_type="text/csv; charset=utf-8", headers=headers)


@view(long=True)
def staff_print(request: Request, db: Session) -> Response:
    """A printable page of codes (cards to cut or letters), PRINT_PAGE per page."""
    reg = _register(request, db)
    require(request, "staff.verification", reg)
    if not reg.can_print:
        raise HTTPException(404)
    page = _id(request.query_params.get("page")) or 1
    letters = list(svc.letters(db, reg, offset=(page - 1) * PRINT_PAGE, limit=PRINT_PAGE))
    if not letters and page > 1:
        raise HTTPException(404)
    response = render(request, "voting/verification_print.html", register=reg, letters=letters, page=page)
    response.headers.update(NO_STORE)
    return response


@view
def staff_printed(request: Request, db: Session) -> Response:
    reg = _register(request, db)
    user = require(request, "staff.verification", reg)
    if form_of(request).get("confirm") != "on":
        flash(request, _("Please confirm that the letters have been printed."), "error")
        return redirect(f"/staff/verification/registers/{reg.id}")
    svc.delete_printing_data(db, reg, staff_id=user.id)
    flash(request, _("The printing data has been deleted. The codes can no longer be downloaded."))
    return redirect(f"/staff/verification/registers/{reg.id}")


@view
def staff_close(request: Request, db: Session) -> Response:
    reg = _register(request, db)
    user = require(request, "staff.verification", reg)
    if form_of(request).get("confirm") != "on":
        flash(request, _("Please confirm that the register should be closed."), "error")
        return redirect(f"/staff/verification/registers/{reg.id}")
    svc.close_register(db, reg, staff_id=user.id)
    flash(request, _("The register has been closed; its codes no longer work."))
    return redirect(f"/staff/verification/registers/{reg.id}")


# --- staff: in person ------------------------------------------------------------------------------------


def _in_person_page(
    request: Request,
    db: Session,
    status: int = 200,
    *,
    form: InPersonForm | None = None,
    error: str = "",
    account: User | None = None,
) -> Response:
    params = request.query_params
    data = form_of(request)
    reference = str(params.get("reference") or data.get("reference") or "").strip()[:100]
    email = str(params.get("email") or data.get("email") or "").strip()[:254]
    found = svc.find_by_reference(db, secret_key=_secret(request), reference=reference) if reference else []
    if account is None and email:
        account = svc.find_account(db, email)
    if account is None and form is not None and _id(form.data.get("user_id")):
        account = db.get(User, _id(form.data.get("user_id")))
        account = None if account is None or account.is_deleted else account
    if form is None:
        initial: dict[str, Any] = {"user_id": str(account.id) if account else ""}
        if len(found) == 1 and not found[0].entry.is_used:
            initial["entry_id"] = str(found[0].entry.id)
        form = InPersonForm(initial=initial)
    return render(
        request,
        "voting/verification_in_person.html",
        status,
        reference=reference,
        email=email,
        found=found,
        account=account,
        form=form,
        error=error,
        searched=bool(reference or email or account),
    )


@view
def staff_in_person(request: Request, db: Session) -> Response:
    """Search by reference and/or e-mail (GET), verify the account (POST); the staff id is recorded."""
    staff = require(request, "staff.verification")
    if request.method == "GET":
        return _in_person_page(request, db)
    form = InPersonForm(form_of(request))
    if not form.is_valid():
        return _in_person_page(request, db, 400, form=form)
    user = db.get(User, form.cleaned["user_id"])
    if user is None or user.is_deleted:
        raise HTTPException(404)
    if form.cleaned["entry_id"] is not None and db.get(RegisterEntry, form.cleaned["entry_id"]) is None:
        raise HTTPException(404)
    try:
        svc.verify_in_person(
            db,
            secret_key=_secret(request),
            staff=staff,
            user=user,
            entry_id=form.cleaned["entry_id"],
            birth_date=form.cleaned["birth_date"],
            postal_code=form.cleaned["postal_code"],
        )
    except svc.VerificationError as exc:
        return _in_person_page(request, db, 400, form=form, error=exc.message, account=user)
    flash(request, _("The account %(email)s is now verified.", email=user.email or ""))
    return redirect("/staff/verification/in-person")


R = "/staff/verification/registers/{register_id:int}"
routes = [
    Route("/account/verify", resident_verify, methods=["GET", "POST"], name="account_verify"),
    Route("/staff/verification", staff_overview, name="staff_verification"),
    Route("/staff/verification/upload", staff_upload, methods=["POST"], name="staff_verification_upload"),
    Route(
        "/staff/verification/generate", staff_generate, methods=["POST"], name="staff_verification_generate"
    ),
    Route(R, staff_register, name="staff_verification_register"),
    Route(f"{R}/letters.csv", staff_letters_csv, name="staff_verification_letters"),
    Route(f"{R}/print", staff_print, name="staff_verification_print"),
    Route(f"{R}/printed", staff_printed, methods=["POST"], name="staff_verification_printed"),
    Route(f"{R}/close", staff_close, methods=["POST"], name="staff_verification_close"),
    Route(
        "/staff/verification/in-person",
        staff_in_person,
        methods=["GET", "POST"],
        name="staff_verification_in_person",
    ),
]
