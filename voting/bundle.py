"""Audit bundles: everything needed to re-check a log (and a process's result) without the platform.

A bundle is a zip file (``write_zip``) or a folder (``write_folder``) with the same files, format version 1
(documented in docs/verifiability.md; golden files in tests/voting/golden/ keep it stable):

* ``bundle.json`` — format, version, log id, process id (null for the platform log), creation time, the
  number of entries and heads, the key id;
* ``entries.jsonl`` — one line per entry: ``{"entry": base64 of the exact entry bytes, "index": i,
  "leaf_hash": hex}`` (canonical JSON), entries ``0 .. size-1`` of the newest signed head;
* ``heads.json`` — every signed head up to that size, in the order the log grew;
* ``public_key.pem`` — the platform's Ed25519 public key;
* process bundles only: ``projects.json`` (projects and budgets per ballot, from the database),
  ``rule.json`` (the process's tally rule), ``result.json`` (the published results, from the database);
* ``verify.py`` — the standalone verifier (``python verify.py bundle.zip``; needs only ``cryptography``);
* ``README.txt`` — how to run it.

Building streams the entries from the database in batches (``audit.iter_entries``) into the archive, so
memory does not grow with the log.
"""

from __future__ import annotations

import ast
import base64
import datetime as dt
import io
import json
import zipfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from sqlalchemy import select
from sqlmodel import Session

from app.database import utcnow
from voting import audit, heads, keys
from voting.merkle import canonical_json
from voting.models import DistrictBudget, Process, Project, TallyRun
from voting.verifier import BUNDLE_FORMAT, BUNDLE_VERSION

HERE = Path(__file__).resolve().parent
VERIFIER_MODULES = ("merkle", "selection", "verifier_rules", "verifier_replay", "verifier")
HEADS_PAGE = 1000
README = """Mitmachen audit bundle (format {version})

This archive holds the tamper-evident log {log} of the Mitmachen participation platform,
its signed tree heads and the platform's public key{process_note}.

Verify it with Python 3.11 or newer and the "cryptography" package:

    python -m pip install cryptography
    python verify.py .                  (inside the unpacked folder)
    python verify.py {name}   (or give it the zip file itself)

Exit status 0: everything checks out (a summary is printed);
1: a check failed (the first failing entry or head is named);
2: the bundle cannot be read.

Compare the key id printed by verify.py with the one the platform publishes at
/.well-known/mitmachen-audit-key.json and on the results page (or pass --key-id).
"""


class BundleError(RuntimeError):
    pass


def process_id_of(log_id: str) -> int | None:
    if log_id == audit.PLATFORM_LOG:
        return None
    prefix, _, number = log_id.partition(":")
    if prefix != "process" or not number.isdigit():
        raise BundleError(f"unknown log {log_id!r}")
    return int(number)


# --- the standalone verifier ------------------------------------------------------------------------------


def _top_level_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                names.update(n.id for n in ast.walk(target) if isinstance(n, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names - {"__all__"}


def verifier_source() -> str:
    """verify.py: merkle.py, selection.py, verifier_rules.py, verifier_replay.py and verifier.py in one file,
    their imports of each other removed (an aliased import becomes an assignment). Raises BundleError if two
    of the modules define the same top-level name, which would make the single file behave differently."""
    parts = [
        '"""Standalone verifier of Mitmachen audit bundles: python verify.py BUNDLE (zip or folder).\n\n'
        "Generated from voting/merkle.py, voting/selection.py, voting/verifier_rules.py,\n"
        "voting/verifier_replay.py and voting/verifier.py of the Mitmachen source code (concatenated; their\n"
        'imports of each other removed). Needs Python 3.11+ and the "cryptography" package. Exit status:\n'
        '0 valid, 1 invalid, 2 unreadable.\n"""\n\n',
        "from __future__ import annotations\n",
    ]
    seen: dict[str, str] = {}
    for module in VERIFIER_MODULES:
        source = (HERE / f"{module}.py").read_text(encoding="utf-8")
        tree = ast.parse(source)
        for name in _top_level_names(tree):
            if name in seen:
                raise BundleError(
                    f"{name!r} is defined in both voting/{seen[name]}.py and voting/{module}.py"
                )
            seen[name] = module
        replace: dict[int, list[str]] = {}
        drop: set[int] = set()
        for node in tree.body:
            if isinstance(node, ast.Import) and any(a.name.split(".")[0] == "voting" for a in node.names):
                raise BundleError(f"voting/{module}.py: use 'from voting.x import y' for verifier imports")
            if not isinstance(node, ast.ImportFrom):
                continue
            internal = node.level > 0 or (node.module or "").split(".")[0] == "voting"
            if node.module == "__future__" or internal:
                drop.update(range(node.lineno, (node.end_lineno or node.lineno) + 1))
                if internal:
                    replace[node.lineno] = [f"{a.asname} = {a.name}\n" for a in node.names if a.asname]
        lines = source.splitlines(keepends=True)
        out = []
        for number, line in enumerate(lines, start=1):
            if number in replace:
                out.extend(replace[number])
            if number not in drop:
                out.append(line)
        parts.append(f"\n\n# {'=' * 100}\n# voting/{module}.py\n# {'=' * 100}\n\n")
        parts.append("".join(out))
    return "".join(parts)


# --- writers ------------------------------------------------------------------------------------------------


class _ZipWriter:
    def __init__(self, target: IO[bytes], when: dt.datetime) -> None:
        self.zip = zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=6)
        self.date_time = when.astimezone(dt.UTC).timetuple()[:6]

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        info = zipfile.ZipInfo(name, date_time=self.date_time)
        info.compress_type = zipfile.ZIP_DEFLATED
        info.external_attr = 0o644 << 16
        with self.zip.open(info, "w", force_zip64=True) as fh:
            yield fh

    def close(self) -> None:
        self.zip.close()


class _FolderWriter:
    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)

    @contextmanager
    def open(self, name: str) -> Iterator[IO[bytes]]:
        with open(self.folder / name, "wb") as fh:
            yield fh

    def close(self) -> None:
        return None


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True) + "\n").encode("utf-8")


# --- the process files ------------------------------------------------------------------------------------


def projects_file(db: Session, process: Process) -> dict[str, Any]:
    """Projects and budget of every ballot of the process, as stored in the database now (the verifier
    compares them with the list logged when voting opened)."""
    budgets: dict[int, int] = {0: process.budget_cents}
    if process.has_district_ballots:
        rows = db.execute(select(DistrictBudget).where(DistrictBudget.process_id == process.id)).scalars()
        budgets.update({b.district_id: b.budget_cents for b in rows})
    scopes: dict[int, list[dict[str, Any]]] = {sid: [] for sid in budgets}
    stmt = select(Project).where(Project.process_id == process.id).order_by(Project.id)
    for project in db.execute(stmt).scalars():
        if not process.has_district_ballots or project.district_id is None:
            scope = 0
        elif project.district_id in budgets:
            scope = project.district_id
        else:
            continue  # on no ballot
        scopes[scope].append({"id": project.id, "title": project.title, "cost_cents": project.cost_cents})
    return {
        "process": process.id,
        "title": process.title,
        "scopes": [
            {"scope": sid, "budget_cents": budgets[sid], "projects": scopes[sid]}
            for sid in sorted(budgets)
            if sid == 0 or scopes[sid]
        ],
    }


def rule_file(process: Process) -> dict[str, Any]:
    return {
        "rule": process.rule,
        "ballot_type": process.ballot_type,
        "tie_breaking": "smaller project id first, ids compared as strings",
        "money": "integer cents in the log; the rule is run in euros (mes-add1 raises budgets one euro at a time)",
    }


def result_file(db: Session, process: Process) -> dict[str, Any]:
    """The published result of every ballot, as the results page shows it (the database's tally runs)."""
    stmt = (
        select(TallyRun)
        .where(TallyRun.process_id == process.id, TallyRun.published_at.is_not(None))
        .order_by(TallyRun.scope, TallyRun.published_at, TallyRun.id)
    )
    latest: dict[int, TallyRun] = {}
    for run in db.execute(stmt).scalars():
        latest[run.scope] = run
    results = []
    for scope in sorted(latest):
        try:
            data = json.loads(latest[scope].result)
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        data.setdefault("scope", scope)
        data.setdefault("rule", latest[scope].rule)
        results.append(data)
    published = process.results_published_at
    return {
        "process": process.id,
        "published_at": audit.format_time(published) if published else None,
        "results": results,
    }


# --- building ---------------------------------------------------------------------------------------------


def _entry_lines(db: Session, log_id: str, size: int) -> Iterator[bytes]:
    for row in audit.iter_entries(db, log_id):
        if row.idx >= size:
            return
        record = {
            "entry": base64.b64encode(bytes(row.entry)).decode("ascii"),
            "index": int(row.idx),
            "leaf_hash": bytes(row.leaf_hash).hex(),
        }
        yield canonical_json(record) + b"\n"


def _write_heads(db: Session, log_id: str, size: int, fh: IO[bytes]) -> int:
    fh.write(b"[")
    count, start = 0, 0
    while True:
        page = heads.list_heads(db, log_id, start=start, limit=HEADS_PAGE)
        for head in page:
            if head.size > size:
                continue
            fh.write(
                (b",\n  " if count else b"\n  ") + json.dumps(heads.head_json(head), sort_keys=True).encode()
            )
            count += 1
        if len(page) < HEADS_PAGE:
            break
        start += HEADS_PAGE
    fh.write(b"\n]\n")
    return count


def _build(
    db: Session,
    *,
    log_id: str,
    writer: _ZipWriter | _FolderWriter,
    key: keys.SigningKey,
    created_at: dt.datetime,
    name: str,
) -> dict[str, Any]:
    process_id = process_id_of(log_id)
    process = db.get(Process, process_id) if process_id is not None else None
    if process_id is not None and process is None:
        raise BundleError(f"no process {process_id}")
    head = heads.latest_head(db, log_id)
    if head is None:
        raise BundleError(f"log {log_id} has no signed tree head yet")
    size = int(head.size)
    with writer.open("entries.jsonl") as fh:
        for line in _entry_lines(db, log_id, size):
            fh.write(line)
    with writer.open("heads.json") as fh:
        head_count = _write_heads(db, log_id, size, fh)
    with writer.open("public_key.pem") as fh:
        fh.write(key.public_pem)
    files = ["bundle.json", "entries.jsonl", "heads.json", "public_key.pem"]
    if process is not None:
        for filename, data in (
            ("projects.json", projects_file(db, process)),
            ("rule.json", rule_file(process)),
            ("result.json", result_file(db, process)),
        ):
            with writer.open(filename) as fh:
                fh.write(_json_bytes(data))
            files.append(filename)
    with writer.open("verify.py") as fh:
        fh.write(verifier_source().encode("utf-8"))
    note = f" and the data to recount process {process_id}" if process_id is not None else ""
    with writer.open("README.txt") as fh:
        fh.write(README.format(version=BUNDLE_VERSION, log=log_id, process_note=note, name=name).encode())
    files += ["verify.py", "README.txt"]
    meta = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "log": log_id,
        "process": process_id,
        "created_at": audit.format_time(created_at),
        "entries": size,
        "heads": head_count,
        "key_id": key.key_id,
        "files": files,
    }
    with writer.open("bundle.json") as fh:
        fh.write(_json_bytes(meta))
    return meta


def prepare(db: Session, *, log_id: str, key: keys.SigningKey | None = None) -> None:
    """Sign a head if the newest one does not cover the whole log (in the caller's write transaction)."""
    process_id = process_id_of(log_id)
    if process_id is not None and db.get(Process, process_id) is None:
        raise BundleError(f"no process {process_id}")
    heads.ensure_head(db, log_id=log_id, reason="bundle", key=key)


def bundle_name(log_id: str) -> str:
    return "audit-" + log_id.replace(":", "-") + ".zip"


def write_zip(
    db: Session,
    *,
    log_id: str,
    target: IO[bytes],
    key: keys.SigningKey | None = None,
    created_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Write the bundle of ``log_id`` as a zip archive to ``target`` (a binary file object)."""
    created_at = created_at or utcnow()
    writer = _ZipWriter(target, created_at)
    try:
        return _build(
            db,
            log_id=log_id,
            writer=writer,
            key=key or keys.signing_key(),
            created_at=created_at,
            name=bundle_name(log_id),
        )
    finally:
        writer.close()


def write_folder(
    db: Session,
    *,
    log_id: str,
    folder: Path,
    key: keys.SigningKey | None = None,
    created_at: dt.datetime | None = None,
) -> dict[str, Any]:
    """Write the bundle of ``log_id`` into ``folder`` (the same files as the zip)."""
    created_at = created_at or utcnow()
    return _build(
        db,
        log_id=log_id,
        writer=_FolderWriter(folder),
        key=key or keys.signing_key(),
        created_at=created_at,
        name=bundle_name(log_id),
    )


def iter_file(
    fh: IO[bytes], chunk: int = 64 * 1024, on_close: Callable[[], None] | None = None
) -> Iterator[bytes]:
    """Read a spooled bundle back in chunks (for a streamed HTTP response)."""
    try:
        fh.seek(0)
        while True:
            data = fh.read(chunk)
            if not data:
                return
            yield data
    finally:
        fh.close()
        if on_close is not None:
            on_close()


def zip_bytes(db: Session, *, log_id: str, key: keys.SigningKey | None = None) -> bytes:
    """The bundle as bytes (tests and small logs)."""
    buf = io.BytesIO()
    write_zip(db, log_id=log_id, target=buf, key=key)
    return buf.getvalue()
