"""Reading a staff upload of the eligible-residents register (voting/verification.py creates the register
from it): CSV, UTF-8 with or without byte-order mark, ``;`` or ``,`` separated, columns reference, postal
code, birth year (a header row with these names, in German or English, is optional). Every problem is
reported with its row; nothing here touches the database.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field

from app.database import utcnow
from app.i18n import gettext as _

MAX_BYTES = 5 * 1024 * 1024
MAX_ROWS = 100_000  # larger registers are uploaded in parts (e.g. one file per district)
REFERENCE_MAX = 64
POSTAL_CODE = re.compile(r"^\d{5}$")
COLUMNS = {
    "reference": "reference",
    "referenz": "reference",
    "ordnungsmerkmal": "reference",
    "id": "reference",
    "postal_code": "postal_code",
    "postal code": "postal_code",
    "postcode": "postal_code",
    "zip": "postal_code",
    "plz": "postal_code",
    "postleitzahl": "postal_code",
    "birth_year": "birth_year",
    "birth year": "birth_year",
    "year of birth": "birth_year",
    "geburtsjahr": "birth_year",
    "jahrgang": "birth_year",
}
ORDER = ("reference", "postal_code", "birth_year")


def normalise_reference(reference: str) -> str:
    return "".join(reference.split()).upper()


@dataclass
class RegisterRow:
    row: int
    reference: str
    postal_code: str
    birth_year: int


@dataclass
class RegisterProblem:
    row: int  # 0: the file as a whole
    message: str


@dataclass
class RegisterImport:
    rows: list[RegisterRow] = field(default_factory=list)
    problems: list[RegisterProblem] = field(default_factory=list)
    MAX_SHOWN = 100

    @property
    def ok(self) -> bool:
        return not self.problems and bool(self.rows)

    @property
    def shown_problems(self) -> list[RegisterProblem]:
        return self.problems[: self.MAX_SHOWN]


def parse_register(raw: bytes, *, this_year: int | None = None) -> RegisterImport:
    """Every row of a register extract and every problem in it (nothing is written)."""
    result = RegisterImport()
    this_year = this_year or utcnow().year
    if len(raw) > MAX_BYTES:
        result.problems.append(
            RegisterProblem(0, _("The file is larger than 5 MB. Please split it into several registers."))
        )
        return result
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        result.problems.append(
            RegisterProblem(
                line,
                _("The file is not UTF-8 encoded (row %(row)s). Please save it as “CSV UTF-8”.", row=line),
            )
        )
        return result
    if "\x00" in text:
        result.problems.append(RegisterProblem(0, _("The file is not a CSV file.")))
        return result
    first = text.split("\n", 1)[0]
    delimiter = ";" if first.count(";") >= first.count(",") else ","
    try:
        table = [(n, cells) for n, cells in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter), 1)]
    except csv.Error as exc:
        result.problems.append(RegisterProblem(0, _("The file could not be read as CSV: %(e)s", e=str(exc))))
        return result
    table = [(n, cells) for n, cells in table if any(c.strip() for c in cells)]
    if not table:
        result.problems.append(RegisterProblem(0, _("The file is empty.")))
        return result
    header = [c.strip().casefold() for c in table[0][1]]
    order: list[str | None] = list(ORDER)
    if any(h in COLUMNS for h in header):
        order = [COLUMNS.get(h) for h in header]
        missing = [c for c in ORDER if c not in order]
        unknown = [c for c, h in zip(table[0][1], header, strict=True) if h not in COLUMNS]
        if missing or unknown or len(set(filter(None, order))) != len([o for o in order if o]):
            result.problems.append(
                RegisterProblem(
                    table[0][0],
                    _(
                        "Row %(row)s (header): expected the columns reference, postal code, birth year "
                        "(found: %(found)s).",
                        row=table[0][0],
                        found=", ".join(c.strip() for c in table[0][1])[:200],
                    ),
                )
            )
            return result
        table = table[1:]
    if len(table) > MAX_ROWS:
        result.problems.append(
            RegisterProblem(0, _("At most %(n)s residents per file. Please split the file.", n=MAX_ROWS))
        )
        return result
    seen: dict[str, int] = {}
    for n, cells in table:

        def problem(message: str, _n: int = n) -> None:
            result.problems.append(
                RegisterProblem(_n, _("Row %(row)s: %(problem)s", row=_n, problem=message))
            )

        if len(cells) != len(order):
            problem(_("expected %(n)s cells, found %(found)s", n=len(order), found=len(cells)))
            continue
        values = {col: cells[k].strip() for k, col in enumerate(order) if col}
        reference = values["reference"]
        postal = "".join(values["postal_code"].split())
        year_text = values["birth_year"]
        ok = True
        if not reference:
            problem(_("the reference is missing"))
            ok = False
        elif len(reference) > REFERENCE_MAX:
            problem(_("the reference is longer than %(n)s characters", n=REFERENCE_MAX))
            ok = False
        else:
            key = normalise_reference(reference)
            if key in seen:
                problem(
                    _("the reference “%(ref)s” was already given in row %(other)s", ref=key, other=seen[key])
                )
                ok = False
            else:
                seen[key] = n
        if not POSTAL_CODE.match(postal):
            problem(_("the postal code “%(value)s” is not five digits", value=postal[:20]))
            ok = False
        if not year_text.isdigit() or not (1900 <= int(year_text) <= this_year):
            problem(
                _(
                    "the birth year “%(value)s” is not a year between 1900 and %(now)s",
                    value=year_text[:20],
                    now=this_year,
                )
            )
            ok = False
        if ok:
            result.rows.append(RegisterRow(n, reference, postal, int(year_text)))
    if not result.rows and not result.problems:
        result.problems.append(RegisterProblem(0, _("The file has no residents.")))
    return result
