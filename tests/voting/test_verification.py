"""Resident verification (app/accounts/verification.py, voting/verification*.py): registers and letter
codes, in-person verification, retention, and the eligibility rules that depend on verified attributes
(minimum age on the closing day, districts, verified residents only), over HTTP."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re

import pytest

from app.accounts.verification import (
    ResidentVerification,
    clear_verification,
    mark_verified,
    verified_age,
)
from app.database import new_session
from app.models import Role, User
from tests.conftest import query
from tests.voting.test_ballots import (
    ballot_state,
    close,
    district_id,
    make_process,
    project_ids,
    set_district,
    verify,
)
from voting import ballots, lifecycle
from voting import verification as svc
from voting.models import Process
from voting.verification_models import RegisterEntry, ResidentRegister

REGISTER_CSV = "\ufeffReferenz;PLZ;Geburtsjahr\nW-0001;42103;1980\nW-0002;42275;2001\nW-0003;42119;1955\n"


@pytest.fixture
def person(make_user):
    """Accounts in English, so the assertions on messages do not depend on the German catalogue."""

    def factory(*args, **kwargs) -> User:
        return make_user(*args, locale="en", **kwargs)

    return factory


@pytest.fixture
def staff(person):
    return person(Role.STAFF, email="sina@example.org", name="Sina Stadt")


@pytest.fixture
def english():
    from app import i18n

    i18n.set_locale("en")
    yield
    i18n.set_locale("de")


def as_user(client, login, user):
    client.cookies.clear()
    login(user)
    return client


def upload(client, text: str | bytes, *, name: str = "Bürgerbudget 2027", retention: str = "hash", **extra):
    raw = text.encode("utf-8") if isinstance(text, str) else text
    token = client.csrf("/staff/verification")
    return client.post(
        "/staff/verification/upload",
        data={"csrf_token": token, "name": name, "retention": retention, **extra},
        files={"file": ("register.csv", raw, "text/csv")},
    )


def register_of(db) -> ResidentRegister:
    (register,) = query(db, ResidentRegister)
    return register


def letter_codes(client, register_id: int) -> dict[str, str]:
    """reference → code from the mail-merge download."""
    r = client.get(f"/staff/verification/registers/{register_id}/letters.csv")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff")), delimiter=";"))
    return {row["reference"] or row["number"]: row["code"] for row in rows}


def fresh(db, user: User) -> User:
    with new_session(db.engine) as s:
        return s.get(User, user.id)


# --- codes ------------------------------------------------------------------------------------------------


def test_letter_codes_are_random_typeable_and_forgiving():
    """ASVS V11.5.1: codes are 80 bits (16 Crockford base32 characters) from HMAC under a 256-bit random
    seed; typing them is forgiving (case, spaces, dashes, O/0, I/L/1); malformed input is recognised."""
    seed_a, seed_b = b"a" * 32, b"b" * 32
    codes = {svc.derive_code(seed_a, n) for n in range(1, 2001)}
    assert len(codes) == 2000 and all(len(c) == 16 and set(c) <= set(svc.ALPHABET) for c in codes)
    assert svc.derive_code(seed_a, 1) != svc.derive_code(seed_b, 1)
    code = svc.derive_code(seed_a, 7)
    pretty = svc.format_code(code)
    assert re.fullmatch(r"[0-9A-Z]{4}(-[0-9A-Z]{4}){3}", pretty)
    assert svc.normalise_code(f"  {pretty.lower()} ") == code
    assert svc.normalise_code(pretty.replace("-", " ")) == code
    assert svc.normalise_code("OOOO-IIII-LLLL-0000") == "000011111111" + "0000"
    for bad in ("", "1234", "ABCD-EFGH-JKMN-PQRU", "ABCD-EFGH-JKMN-PQRST"):
        assert svc.normalise_code(bad) is None
    assert svc.code_hash("k1", code) != svc.code_hash("k2", code)


# --- parsing the register ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        REGISTER_CSV,
        REGISTER_CSV.replace(";", ","),
        REGISTER_CSV.lstrip("\ufeff"),
        "W-0001;42103;1980\r\nW-0002;42275;2001\r\n\r\nW-0003;42119;1955\r\n",
        "reference,postal_code,birth_year\nW-0001,42103,1980\nW-0002,42275,2001\nW-0003,42119,1955",
        "Geburtsjahr;Referenz;PLZ\n1980;W-0001;42103\n2001;W-0002;42275\n1955;W-0003;42119\n",
    ],
)
def test_register_files_in_the_usual_shapes(text):
    """Comma or semicolon, with or without BOM and header (any column order with a header)."""
    parsed = svc.parse_register(text.encode("utf-8"), this_year=2026)
    assert parsed.ok, parsed.problems
    assert [(r.reference, r.postal_code, r.birth_year) for r in parsed.rows] == [
        ("W-0001", "42103", 1980),
        ("W-0002", "42275", 2001),
        ("W-0003", "42119", 1955),
    ]


def test_register_problems_name_their_rows(english):
    """Every broken row is reported with its number; wrong encoding and an empty file too."""
    text = (
        "reference;postal code;birth year\n"
        "W-1;42103;1980\n"
        ";42103;1980\n"
        "W-3;4210;1980\n"
        "W-4;42103;1850\n"
        "w-1;42103;1990\n"
        "W-6;42103\n"
        "W-7;42103;20x0\n"
    )
    parsed = svc.parse_register(text.encode(), this_year=2026)
    assert not parsed.ok
    rows = {p.row for p in parsed.problems}
    assert rows == {3, 4, 5, 6, 7, 8}
    messages = " ".join(p.message for p in parsed.problems)
    assert "Row 6" in messages and "row 2" in messages  # the duplicate names the first occurrence
    assert svc.parse_register(
        "W-1;42103;1980\n".encode("latin-1") + "Müller;42103;1980".encode("latin-1")
    ).problems
    assert svc.parse_register(b"").problems[0].row == 0
    assert svc.parse_register(b"name;city\nx;y\n").problems[0].row == 1


# --- staff upload → letters → resident ------------------------------------------------------------------


def test_upload_print_and_redeem(db, client, login, staff, person):
    """Staff upload an extract (one code per row), download the codes (CSV and printable page, no-store);
    a resident enters a code once: the account is verified with the register's birth year and postal code
    and can vote in a verified-only process."""
    process = make_process(db, require_verified=True)
    as_user(client, login, staff)
    r = upload(client, REGISTER_CSV, process_id=str(process.id))
    register = register_of(db)
    assert r.status_code == 303 and r.headers["location"] == f"/staff/verification/registers/{register.id}"
    assert register.process_id == process.id and register.created_by == staff.id and register.has_data
    entries = query(db, RegisterEntry, RegisterEntry.register_id == register.id)
    assert len(entries) == 3 and all(len(e.code_hash) == 64 and e.reference_hash for e in entries)
    page = client.get(f"/staff/verification/registers/{register.id}")
    assert page.status_code == 200 and "letters.csv" in page.text
    codes = letter_codes(client, register.id)
    assert set(codes) == {"W-0001", "W-0002", "W-0003"}
    secret = client.app.state.settings.secret_key  # only keyed hashes of the codes are stored
    assert {e.code_hash for e in entries} == {
        svc.code_hash(secret, svc.normalise_code(c)) for c in codes.values()
    }
    printable = client.get(f"/staff/verification/registers/{register.id}/print?page=1")
    assert printable.status_code == 200 and codes["W-0002"] in printable.text
    assert printable.headers["cache-control"] == "no-store" and "verification.css" in printable.text
    assert client.get(f"/staff/verification/registers/{register.id}/print?page=9").status_code == 404

    resident = person(email="rosa@example.org")
    as_user(client, login, resident)
    refused = client.get(f"/processes/{process.id}/ballot")
    assert refused.status_code == 403 and f"/account/verify?next=/processes/{process.id}" in refused.text
    form = client.get(f"/account/verify?next=/processes/{process.id}")
    assert form.status_code == 200 and 'name="code"' in form.text
    r = client.post_form(
        "/account/verify",
        {"code": codes["W-0002"].lower().replace("-", " "), "next": f"/processes/{process.id}"},
    )
    assert r.status_code == 303 and r.headers["location"] == f"/processes/{process.id}"
    user = fresh(db, resident)
    assert user.resident_verified_at is not None and user.resident_verification_method == "letter"
    assert (user.verified_birth_year, user.verified_birth_date, user.verified_postal_code) == (
        2001,
        None,
        "42275",
    )
    (entry,) = query(db, RegisterEntry, RegisterEntry.used_by_user_id == resident.id)
    assert entry.reference == "W-0002" and entry.used_at is not None
    (event,) = query(db, ResidentVerification, ResidentVerification.user_id == resident.id)
    assert event.method == "letter" and event.reference_hash == entry.reference_hash
    assert client.get(f"/processes/{process.id}/ballot").status_code == 200
    cast = client.post_form(
        f"/processes/{process.id}/ballot/cast",
        {"scope": "0", "selection": json.dumps(project_ids(db, process)[:1])},
    )
    assert cast.status_code == 303 and ballot_state(db, process)[0] == 1
    assert "Your residence is verified (since" in client.get("/account/verify").text
    assert "Your residence is verified." in client.get("/account").text


def test_nothing_is_stored_when_a_row_is_wrong(db, client, login, staff):
    """A file with one broken row: 400 with the row's problem, no register, no entries."""
    as_user(client, login, staff)
    r = upload(client, REGISTER_CSV + "W-0004;421;1980\n")
    assert r.status_code == 400 and 'data-row="5"' in r.text
    assert query(db, ResidentRegister) == [] and query(db, RegisterEntry) == []
    missing = client.post_form("/staff/verification/upload", {"name": "x", "retention": "hash"})
    assert missing.status_code == 400 and 'id="e-file"' in missing.text
    bad_name = upload(client, REGISTER_CSV, name="", retention="forever")
    assert (
        bad_name.status_code == 400 and 'id="e-name"' in bad_name.text and 'id="e-retention"' in bad_name.text
    )
    assert query(db, ResidentRegister) == []


def test_a_used_code_is_refused(db, client, login, staff, person):
    """A letter code binds to one account: a second account gets "already used" (400), the owner is told
    it is theirs; one account cannot collect a second code of the same register."""
    as_user(client, login, staff)
    upload(client, REGISTER_CSV)
    codes = letter_codes(client, register_of(db).id)
    first, second = person(), person()
    as_user(client, login, first)
    assert client.post_form("/account/verify", {"code": codes["W-0001"]}).status_code == 303
    again = client.post_form("/account/verify", {"code": codes["W-0001"]})
    assert again.status_code == 400 and "already used this code" in again.text
    other = client.post_form("/account/verify", {"code": codes["W-0003"]})
    assert other.status_code == 400 and "another code" in other.text
    as_user(client, login, second)
    r = client.post_form("/account/verify", {"code": codes["W-0001"]})
    assert r.status_code == 400 and "already been used" in r.text and 'aria-invalid="true"' in r.text
    assert fresh(db, second).resident_verified_at is None
    (entry,) = query(db, RegisterEntry, RegisterEntry.used_by_user_id.is_not(None))
    assert entry.used_by_user_id == first.id


def test_wrong_and_malformed_codes(db, client, login, person):
    """Unknown and malformed codes get clear errors next to the field; the account stays unverified."""
    resident = person()
    as_user(client, login, resident)
    for code, text in (
        ("ABCD", "16 letters"),
        ("ABCD-EFGH-JKMN-PQRS", "not valid"),
        ("", "code from your letter"),
    ):
        r = client.post_form("/account/verify", {"code": code})
        assert r.status_code == 400 and text in r.text and 'id="e-code"' in r.text
    assert fresh(db, resident).resident_verified_at is None
    assert (
        client.post_form("/account/verify", {"code": "x", "next": "https://evil.example"}).status_code == 400
    )


class TestBruteForce:
    @pytest.fixture
    def settings_overrides(self):
        return {"rate_limit_enabled": True, "rate_limit_verification": "3/3600"}

    def test_guessing_codes_is_rate_limited_and_logged(self, db, client, login, person, caplog):
        """consul #319/#371, ASVS V2.4.1: letter-code attempts are counted and capped per account and IP
        (429 with Retry-After); failed attempts are logged without the code."""
        as_user(client, login, person())
        guesses = [f"ABCD-EFGH-JKMN-PQR{c}" for c in "0123456"]
        with caplog.at_level(logging.INFO, logger="mitmachen.verification"):
            statuses = [client.post_form("/account/verify", {"code": g}).status_code for g in guesses[:5]]
        assert statuses == [400, 400, 400, 429, 429]
        blocked = client.post_form("/account/verify", {"code": guesses[5]})
        assert blocked.status_code == 429 and int(blocked.headers["retry-after"]) > 0
        refused = [
            r for r in caplog.records if r.name == "mitmachen.verification" and "refused" in r.getMessage()
        ]
        assert len(refused) == 3 and all("reason=unknown" in r.getMessage() for r in refused)
        assert not any("ABCDEFGH" in r.getMessage() or "ABCD-" in r.getMessage() for r in caplog.records)
        # another account from the same address is still blocked (per-IP key)
        as_user(client, login, person())
        assert client.post_form("/account/verify", {"code": guesses[6]}).status_code == 429


# --- generated codes, printing data, retention --------------------------------------------------------------


def test_generated_codes_verify_residence_only(db, client, login, staff, person):
    """ "Generate N codes" without register data: a code verifies residence, but no age or postal code."""
    as_user(client, login, staff)
    r = client.post_form("/staff/verification/generate", {"name": "Bürgerbüro Barmen", "count": "5"})
    register = register_of(db)
    assert r.status_code == 303 and not register.has_data
    codes = list(letter_codes(client, register.id).values())
    assert len(codes) == 5 and len(set(codes)) == 5
    bad = client.post_form("/staff/verification/generate", {"name": "x", "count": "0"})
    assert bad.status_code == 400 and 'id="e-count"' in bad.text
    resident = person()
    as_user(client, login, resident)
    assert client.post_form("/account/verify", {"code": codes[3]}).status_code == 303
    user = fresh(db, resident)
    assert (
        user.resident_verified_at and user.verified_birth_year is None and user.verified_postal_code is None
    )
    aged = make_process(db, min_age=16)
    assert ballots.eligibility_problems(aged, user) == ["age_unverified"]


def test_deleting_printing_data_and_closing(db, client, login, staff, person):
    """After printing, staff delete the printing data (no more downloads, plain references gone); closing
    applies the retention ("hash": only the keyed reference hash, postal code and birth year stay) and
    the codes stop working."""
    as_user(client, login, staff)
    upload(client, REGISTER_CSV)
    register = register_of(db)
    codes = letter_codes(client, register.id)
    base = f"/staff/verification/registers/{register.id}"
    assert client.post_form(f"{base}/printed", {}).status_code == 303
    assert register_of(db).code_seed is not None  # not confirmed: nothing happened
    assert client.post_form(f"{base}/printed", {"confirm": "on"}).status_code == 303
    assert register_of(db).code_seed is None
    assert client.get(f"{base}/letters.csv").status_code == 404
    assert client.get(f"{base}/print").status_code == 404
    assert all(e.reference is None and e.reference_hash for e in query(db, RegisterEntry))
    resident = person()
    as_user(client, login, resident)
    assert client.post_form("/account/verify", {"code": codes["W-0001"]}).status_code == 303  # still works
    as_user(client, login, staff)
    assert client.post_form(f"{base}/close", {"confirm": "on"}).status_code == 303
    assert register_of(db).closed_at is not None
    entries = query(db, RegisterEntry)
    assert all(e.reference is None and e.reference_hash and e.postal_code and e.birth_year for e in entries)
    as_user(client, login, person())
    r = client.post_form("/account/verify", {"code": codes["W-0002"]})
    assert r.status_code == 400 and "no longer valid" in r.text


def test_final_results_delete_the_register_data(db, client, login, staff, person):
    """Retention "delete": when the linked process's voter links are destroyed (results final), the
    register closes and reference, its hash, postal code and birth year are removed."""
    process = make_process(db, phase="results")
    other = make_process(db)
    as_user(client, login, staff)
    upload(client, REGISTER_CSV, retention="delete", process_id=str(process.id))
    upload(client, REGISTER_CSV.replace("W-", "X-"), name="other", process_id=str(other.id))
    with new_session(db.engine, write=True) as s:
        lifecycle.destroy_links(s, process=s.get(Process, process.id))
        s.commit()
    closed, still_open = sorted(query(db, ResidentRegister), key=lambda r: r.id)
    assert closed.closed_at is not None and closed.code_seed is None and still_open.closed_at is None
    gone = query(db, RegisterEntry, RegisterEntry.register_id == closed.id)
    assert len(gone) == 3
    assert all((e.reference, e.reference_hash, e.postal_code, e.birth_year) == (None,) * 4 for e in gone)
    kept = query(db, RegisterEntry, RegisterEntry.register_id == still_open.id)
    assert all(e.reference and e.postal_code for e in kept)


# --- in person ------------------------------------------------------------------------------------------


def test_in_person_verification_by_reference(db, client, login, staff, person):
    """Staff find the entry by its reference (keyed-hash match) and the account by e-mail, and verify it
    (the staff id is recorded; the entry is used). Unknown references find nothing; staff cannot verify
    themselves; an entry used by another account is refused."""
    as_user(client, login, staff)
    upload(client, REGISTER_CSV)
    resident = person(email="paul@example.org")
    page = client.get("/staff/verification/in-person?reference=w-0003&email=PAUL@example.org")
    assert page.status_code == 200 and "1955" in page.text and "paul@example.org" in page.text
    (entry,) = query(db, RegisterEntry, RegisterEntry.postal_code == "42119")
    assert f'value="{entry.id}"' in page.text
    nothing = client.get("/staff/verification/in-person?reference=W-9999")
    assert "No open register" in nothing.text
    wrong_year = client.post_form(
        "/staff/verification/in-person",
        {"user_id": str(resident.id), "entry_id": str(entry.id), "birth_date": "1956-01-01"},
    )
    assert wrong_year.status_code == 400 and "does not match" in wrong_year.text
    r = client.post_form(
        "/staff/verification/in-person",
        {"user_id": str(resident.id), "entry_id": str(entry.id), "birth_date": "1955-07-14"},
    )
    assert r.status_code == 303
    user = fresh(db, resident)
    assert user.resident_verification_method == "in_person"
    assert (user.verified_birth_date, user.verified_postal_code) == (dt.date(1955, 7, 14), "42119")
    (event,) = query(db, ResidentVerification, ResidentVerification.user_id == resident.id)
    assert event.verified_by == staff.id
    (used,) = query(db, RegisterEntry, RegisterEntry.id == entry.id)
    assert used.used_by_user_id == resident.id and used.verified_by == staff.id
    taken = client.post_form(
        "/staff/verification/in-person", {"user_id": str(person().id), "entry_id": str(entry.id)}
    )
    assert taken.status_code == 400 and "another account" in taken.text
    myself = client.post_form(
        "/staff/verification/in-person",
        {"user_id": str(staff.id), "birth_date": "1980-01-01", "postal_code": "42103"},
    )
    assert myself.status_code == 400 and "your own account" in myself.text
    assert fresh(db, staff).resident_verified_at is None


def test_in_person_verification_with_an_id_card(db, client, login, staff, person):
    """Without a register entry the date of birth and postal code from the ID card are required."""
    resident = person()
    as_user(client, login, staff)
    r = client.post_form(
        "/staff/verification/in-person", {"user_id": str(resident.id), "postal_code": "42103"}
    )
    assert r.status_code == 400 and "identity document" in r.text
    bad = client.post_form(
        "/staff/verification/in-person",
        {"user_id": str(resident.id), "birth_date": "14.07.1955", "postal_code": "421"},
    )
    assert bad.status_code == 400 and 'id="e-birth_date"' in bad.text and 'id="e-postal_code"' in bad.text
    ok = client.post_form(
        "/staff/verification/in-person",
        {"user_id": str(resident.id), "birth_date": "2009-03-02", "postal_code": "42 103"},
    )
    assert ok.status_code == 303
    user = fresh(db, resident)
    assert (user.verified_birth_date, user.verified_postal_code) == (dt.date(2009, 3, 2), "42103")
    assert client.post_form("/staff/verification/in-person", {"user_id": "999999"}).status_code == 404


def test_staff_pages_need_the_permission(db, client, login, person):
    """ASVS V8.3.1: residents and moderators get 403 on every staff page, anonymous visitors the login;
    unknown registers are 404 for staff."""
    pages = [
        "/staff/verification",
        "/staff/verification/in-person",
        "/staff/verification/registers/1",
        "/staff/verification/registers/1/letters.csv",
        "/staff/verification/registers/1/print",
    ]
    posts = [
        "/staff/verification/upload",
        "/staff/verification/generate",
        "/staff/verification/registers/1/close",
    ]
    assert client.get(pages[0]).status_code == 303
    assert client.get("/account/verify").status_code == 303
    for role in (Role.RESIDENT, Role.MODERATOR):
        as_user(client, login, person(role))
        assert [client.get(p).status_code for p in pages] == [403] * len(pages)
        assert [client.post_form(p, {"confirm": "on"}).status_code for p in posts] == [403] * len(posts)
    as_user(client, login, person(Role.STAFF))
    assert client.get("/staff/verification/registers/1").status_code == 404
    assert client.get(f"/staff/verification/registers/{2**40}").status_code == 404
    assert "/staff/verification" in client.get("/staff").text


# --- eligibility over HTTP ---------------------------------------------------------------------------------


def test_minimum_age_on_the_closing_day(db, client, login, person):
    """The minimum age counts on the day voting closes, from the verified birth date: a resident who
    turns 16 the day after is refused with an explanation; one who turns 16 on that day may vote. With only
    a birth year the age is counted as if the birthday were 31 December."""
    process = make_process(db, min_age=16)
    closing = ballots.close_date(process)
    sixteen = closing.replace(year=closing.year - 16)
    too_young = verify(db, person(), birth_date=sixteen + dt.timedelta(days=1))
    just_old_enough = verify(db, person(), birth_date=sixteen)
    as_user(client, login, too_young)
    r = client.get(f"/processes/{process.id}/ballot")
    assert r.status_code == 403 and "16" in r.text and "verified date of birth" in r.text
    page = client.get(f"/processes/{process.id}")
    assert (
        "verified date of birth" in page.text
        and "/account/verify" not in page.text.split("refusal-reasons")[1][:600]
    )
    cast = client.post_form(
        f"/processes/{process.id}/ballot/cast",
        {"scope": "0", "selection": json.dumps(project_ids(db, process)[:1])},
    )
    assert cast.status_code == 403 and ballot_state(db, process)[0] == 0
    as_user(client, login, just_old_enough)
    assert client.get(f"/processes/{process.id}/ballot").status_code == 200

    year_only = verify(db, person(), method="letter", birth_year=closing.year - 16, postal_code="42103")
    assert verified_age(year_only, closing) == 15  # conservatively: as if born on 31 December
    as_user(client, login, year_only)
    r = client.get(f"/processes/{process.id}/ballot")
    assert r.status_code == 403 and "31 December" in r.text
    older = verify(db, person(), method="letter", birth_year=closing.year - 17)
    as_user(client, login, older)
    assert client.get(f"/processes/{process.id}/ballot").status_code == 200


def test_district_and_verification_refusals_explained(db, client, login, person):
    """Districts (profile district missing or not eligible) and verified-only processes are explained on
    the process page and the ballot page; the verification link appears where verifying helps."""
    barmen = district_id(db, "barmen")
    local = make_process(db, eligible_district_ids=str(barmen), require_verified=True)
    resident = person()
    as_user(client, login, resident)
    r = client.get(f"/processes/{local.id}/ballot")
    assert r.status_code == 403 and "verified residents only" in r.text and "choose your district" in r.text
    assert f"/account/verify?next=/processes/{local.id}" in r.text
    verify(db, resident, postal_code="42275")
    set_district(db, resident, "elberfeld")
    r = client.get(f"/processes/{local.id}/ballot")
    assert (
        r.status_code == 403
        and "other districts" in r.text
        and "/account/verify" not in r.text.split("<main")[1]
    )
    set_district(db, resident, "barmen")
    assert client.get(f"/processes/{local.id}/ballot").status_code == 200


# --- the account-level service ------------------------------------------------------------------------------


def test_mark_verified_keeps_the_most_precise_birth_date(db, person):
    """A later letter code with the same birth year keeps an exact birth date from an identity-verified
    sign-in; a different year replaces it. Unknown methods and contradictions are refused; deleting the
    account forgets the verified attributes."""
    user = verify(
        db, person(), method="oidc:servicekonto", birth_date=dt.date(2008, 4, 2), postal_code="42103"
    )
    assert user.resident_verification_method == "oidc:servicekonto"
    user = verify(db, user, method="letter", birth_year=2008, postal_code="42275")
    assert (user.verified_birth_date, user.verified_postal_code) == (dt.date(2008, 4, 2), "42275")
    user = verify(db, user, method="letter", birth_year=2007)
    assert (user.verified_birth_date, user.verified_birth_year) == (None, 2007)
    assert len(query(db, ResidentVerification, ResidentVerification.user_id == user.id)) == 3
    with new_session(db.engine, write=True) as s:
        row = s.get(User, user.id)
        for kwargs in (
            {"method": "email"},
            {"method": "letter", "birth_date": dt.date(2000, 1, 1), "birth_year": 2001},
            {"method": "letter", "birth_year": 1800},
        ):
            with pytest.raises(ValueError):
                mark_verified(s, row, **kwargs)
        clear_verification(row)
        assert row.resident_verified_at is None and row.verified_birth_year is None


def test_deleting_the_account_forgets_the_verification(db, client, login, person):
    resident = verify(db, person(), birth_date=dt.date(1990, 1, 1), postal_code="42103")
    as_user(client, login, resident)
    r = client.post_form("/account/delete", {"password": "correct horse battery", "confirm": "on"})
    assert r.status_code == 303
    user = fresh(db, resident)
    assert user.is_deleted and user.resident_verified_at is None and user.verified_birth_date is None


def test_close_date_is_the_day_voting_closed(db):
    """Closing early moves the day whose age counts (Berlin time)."""
    process = make_process(db, min_age=16)
    planned = ballots.close_date(process)
    close(db, process)
    with new_session(db.engine) as s:
        closed = s.get(Process, process.id)
    assert ballots.close_date(closed) <= planned
