"""The independent verifier catches every kind of tampering and names where it is: an altered byte, a dropped
or reordered entry, a swapped or forged head, a changed result, ballots outside the voting window, invalid
selections and double ballots; ``mitmachen verify`` exits 0 / 1 / 2."""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from test_bundle import T0, Built, build_process, fixed_key, write_folder

from voting import audit, audit_cli, heads, verifier
from voting.merkle import leaf_hash


@pytest.fixture
def bundle_dir(db, tmp_path) -> tuple[Built, Path]:
    built = build_process(db.engine, rule="mes", voters=20, replaced=3)
    folder = tmp_path / "bundle"
    write_folder(db.engine, built, folder)
    assert verifier.verify(folder).process == built.process_id
    return built, folder


def lines(folder: Path) -> list[bytes]:
    return (folder / "entries.jsonl").read_bytes().splitlines(keepends=True)


def write_lines(folder: Path, rows: list[bytes]) -> None:
    (folder / "entries.jsonl").write_bytes(b"".join(rows))


def record(line: bytes) -> dict:
    return json.loads(line)


def raw_entry(line: bytes) -> bytes:
    return base64.b64decode(record(line)["entry"])


def rewrite(rec: dict, raw: bytes, *, rehash: bool) -> bytes:
    rec = dict(rec, entry=base64.b64encode(raw).decode())
    if rehash:
        rec["leaf_hash"] = leaf_hash(raw).hex()
    return (json.dumps(rec, sort_keys=True, separators=(",", ":")) + "\n").encode()


def failure(folder: Path) -> verifier.Invalid:
    with pytest.raises(verifier.Invalid) as info:
        verifier.verify(folder)
    err = io.StringIO()
    assert verifier.run(folder, out=io.StringIO(), err=err) == 1
    assert info.value.where in err.getvalue()
    return info.value


def heads_of(folder: Path) -> list[dict]:
    return json.loads((folder / "heads.json").read_text())


def write_heads(folder: Path, data: list[dict]) -> None:
    (folder / "heads.json").write_text(json.dumps(data))


# --- integrity ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("which", ["first", "middle", "last"])
def test_one_altered_byte_is_named(bundle_dir, which):
    """Changing one byte of any entry is caught at that entry (its hash), and if the hash is recomputed too,
    at the first signed head whose root no longer matches."""
    _built, folder = bundle_dir
    rows = lines(folder)
    index = {"first": 0, "middle": len(rows) // 2, "last": len(rows) - 1}[which]
    raw = bytearray(raw_entry(rows[index]))
    pos = raw.index(b'"at":"') + 8  # a digit of the timestamp: still valid JSON afterwards
    raw[pos] = ord("7") if raw[pos] != ord("7") else ord("8")
    original = rows[index]
    rows[index] = rewrite(record(original), bytes(raw), rehash=False)
    write_lines(folder, rows)
    exc = failure(folder)
    assert (exc.check, exc.where) == ("hash", f"entry {index}")

    rows[index] = rewrite(record(original), bytes(raw), rehash=True)
    write_lines(folder, rows)
    exc = failure(folder)
    assert exc.check == "root" and exc.where.startswith("head ")
    first_covering = next(k for k, h in enumerate(heads_of(folder)) if h["size"] > index)
    assert exc.where.startswith(f"head {first_covering} ")


def test_a_dropped_entry_is_named(bundle_dir):
    _built, folder = bundle_dir
    rows = lines(folder)
    del rows[5]
    write_lines(folder, rows)
    exc = failure(folder)
    assert (exc.check, exc.where) == ("order", "entry 5") and "missing" in exc.message


def test_two_reordered_entries_are_named(bundle_dir):
    _built, folder = bundle_dir
    rows = lines(folder)
    rows[7], rows[9] = rows[9], rows[7]
    write_lines(folder, rows)
    exc = failure(folder)
    assert (exc.check, exc.where) == ("order", "entry 7")


def test_reordered_entries_with_rewritten_indices_break_the_root(bundle_dir):
    """Swapping two entries and fixing up every index field (and hash) still fails: the signed roots."""
    _built, folder = bundle_dir
    rows = lines(folder)
    a, b = json.loads(raw_entry(rows[7])), json.loads(raw_entry(rows[9]))
    a["index"], b["index"] = 9, 7
    from voting.merkle import canonical_json

    rows[7] = rewrite(dict(record(rows[9]), index=7), canonical_json(b), rehash=True)
    rows[9] = rewrite(dict(record(rows[7]), index=9), canonical_json(a), rehash=True)
    write_lines(folder, rows)
    assert failure(folder).check == "root"


def test_truncated_log_is_not_covered(bundle_dir):
    """Dropping the last entries leaves the newest head signing more entries than the bundle has."""
    _built, folder = bundle_dir
    write_lines(folder, lines(folder)[:-2])
    exc = failure(folder)
    assert exc.check == "heads" and "the bundle has only" in exc.message


# --- heads and signatures -----------------------------------------------------------------------------------


def test_a_swapped_head_from_a_fork_is_named(bundle_dir):
    """A validly signed head of a forked log (same key, same log, other root) is caught by its root."""
    built, folder = bundle_dir
    data = heads_of(folder)
    fork = dict(data[1])
    fork["root"] = leaf_hash(b"another history").hex()
    fork["signature"] = built.key.sign(
        heads.statement(
            log_id=fork["log"],
            size=fork["size"],
            root=bytes.fromhex(fork["root"]),
            timestamp=fork["timestamp"],
        )
    ).hex()
    data[1] = fork
    write_heads(folder, data)
    exc = failure(folder)
    assert (exc.check, exc.where) == ("root", f"head 1 (size {fork['size']}, {fork['timestamp']})")


def test_heads_out_of_order_and_from_another_log(bundle_dir):
    built, folder = bundle_dir
    data = heads_of(folder)
    write_heads(folder, [data[0], data[2], data[1], *data[3:]])
    exc = failure(folder)
    assert exc.check == "heads" and exc.where.startswith("head 2 ") and "smaller" in exc.message
    other = dict(data[1], log="process:999")
    write_heads(folder, [data[0], other, *data[2:]])
    exc = failure(folder)
    assert exc.where.startswith("head 1 ") and "process:999" in exc.message


def test_a_forged_signature_is_named(bundle_dir):
    _built, folder = bundle_dir
    data = heads_of(folder)
    sig = bytearray(bytes.fromhex(data[2]["signature"]))
    sig[10] ^= 0x01
    data[2]["signature"] = sig.hex()
    write_heads(folder, data)
    exc = failure(folder)
    assert exc.check == "signature" and exc.where.startswith("head 2 ")


def test_a_signature_by_another_key_is_refused(bundle_dir):
    """Re-signing every head with an attacker's key and swapping public_key.pem changes the key id, which a
    reader compares with the platform's published key (--key-id)."""
    built, folder = bundle_dir
    attacker = fixed_key(9)
    (folder / "public_key.pem").write_bytes(attacker.public_pem)
    exc = failure(folder)
    assert exc.check == "signature" and "not the bundle's key" in exc.message
    data = heads_of(folder)
    for head in data:
        head["key_id"] = attacker.key_id
        head["signature"] = attacker.sign(
            heads.statement(
                log_id=head["log"],
                size=head["size"],
                root=bytes.fromhex(head["root"]),
                timestamp=head["timestamp"],
            )
        ).hex()
    write_heads(folder, data)
    assert verifier.verify(folder).key_id == attacker.key_id  # self-consistent …
    with pytest.raises(verifier.Invalid, match="is not the expected"):
        verifier.verify(folder, expected_key_id=built.key.key_id)  # … but not the platform's key


# --- process replay and result ------------------------------------------------------------------------------


def test_a_changed_published_result_is_named(bundle_dir):
    _built, folder = bundle_dir
    result = json.loads((folder / "result.json").read_text())
    result["results"][0]["selected"] = result["results"][0]["selected"][:-1]
    (folder / "result.json").write_text(json.dumps(result))
    exc = failure(folder)
    assert (exc.check, exc.where) == ("result", "result.json") and "recomputed" in exc.message


def test_a_signed_but_wrong_tally_entry_is_named(db, tmp_path):
    """The operator logs (and signs) a result the ballots do not give: the recount names that entry."""
    built = build_process(db.engine, publish_wrong=True)
    write_folder(db.engine, built, tmp_path / "b")
    index = len(lines(tmp_path / "b")) - 1
    exc = failure(tmp_path / "b")
    assert (exc.check, exc.where) == ("result", f"entry {index}") and "tally.published" in exc.message


def _cast(
    db, built: Built, when: dt.datetime, uid: str, selection, entry_type="ballot.cast", version=1
) -> int:
    return audit.append(
        db,
        log_id=built.log_id,
        entry_type=entry_type,
        payload={"ballot": uid, "scope": 0, "selection": selection, "version": version, "paper": False},
        at=when,
    ).index


def _project_ids(db, built: Built) -> list[int]:
    from sqlalchemy import select

    from voting.models import Project

    return list(db.execute(select(Project.id).where(Project.process_id == built.process_id)).scalars())


def test_a_ballot_after_the_close_is_named(db, tmp_path):
    built = build_process(db.engine, publish=False)
    from app.database import new_session

    with new_session(db.engine, write=True) as s:
        pids = sorted(_project_ids(s, built))
        index = _cast(s, built, T0 + dt.timedelta(days=14, hours=1), "late" * 8, [pids[0]])
        heads.sign_head(s, log_id=built.log_id, reason="demand", key=built.key)
        s.commit()
    write_folder(db.engine, built, tmp_path / "b")
    exc = failure(tmp_path / "b")
    assert (exc.check, exc.where) == ("window", f"entry {index}") and "after process.closed" in exc.message


def test_a_ballot_stamped_after_the_planned_end_is_named(db, tmp_path):
    """Inside the log's window by position but timestamped after the declared end of voting."""
    found = {}

    def inject(s, built, when):
        found["i"] = _cast(
            s, built, T0 + dt.timedelta(days=15), "f" * 32, [sorted(_project_ids(s, built))[0]]
        )

    built = build_process(db.engine, inject=inject)
    write_folder(db.engine, built, tmp_path / "b")
    exc = failure(tmp_path / "b")
    assert (exc.check, exc.where) == ("window", f"entry {found['i']}")


def test_an_invalid_selection_is_named(db, tmp_path):
    """Four projects where the ballot allows three (max_choices), logged during the vote."""
    found = {}

    def inject(s, built, when):
        found["i"] = _cast(s, built, when, "b" * 32, sorted(_project_ids(s, built))[:4])

    built = build_process(db.engine, inject=inject)
    write_folder(db.engine, built, tmp_path / "b")
    exc = failure(tmp_path / "b")
    assert (exc.check, exc.where) == ("selection", f"entry {found['i']}") and "too_many" in exc.message


def test_two_ballots_under_one_id_without_replaced_are_named(db, tmp_path):
    found = {}

    def inject(s, built, when):
        uid = next(iter(built.ballots))
        found["i"] = _cast(s, built, when, uid, [sorted(_project_ids(s, built))[1]])
        found["first"] = min(i for u, i in built.ballots.items() if u == uid)

    built = build_process(db.engine, inject=inject, replaced=0)
    write_folder(db.engine, built, tmp_path / "b")
    exc = failure(tmp_path / "b")
    assert (exc.check, exc.where) == ("ballot", f"entry {found['i']}")
    assert "second time" in exc.message and f"entry {found['first']}" in exc.message


def test_a_replacement_must_continue_the_versions(db, tmp_path):
    found = {}

    def inject(s, built, when):
        uid = next(iter(built.ballots))
        found["i"] = _cast(
            s, built, when, uid, [sorted(_project_ids(s, built))[1]], "ballot.replaced", version=5
        )

    built = build_process(db.engine, inject=inject, replaced=0)
    write_folder(db.engine, built, tmp_path / "b")
    exc = failure(tmp_path / "b")
    assert (exc.check, exc.where) == ("ballot", f"entry {found['i']}") and "expected 2" in exc.message


def test_changed_project_list_is_named(bundle_dir):
    _built, folder = bundle_dir
    projects = json.loads((folder / "projects.json").read_text())
    projects["scopes"][0]["projects"][0]["cost_cents"] += 1
    (folder / "projects.json").write_text(json.dumps(projects))
    exc = failure(folder)
    assert (exc.check, exc.where) == ("projects", "projects.json")


def test_open_vote_bundle_verifies_without_result(db, tmp_path):
    built = build_process(db.engine, close=False)
    write_folder(db.engine, built, tmp_path / "b")
    report = verifier.verify(tmp_path / "b")
    assert not report.closed and report.results == [] and "still open" in report.summary()


@pytest.mark.parametrize(
    ("rule", "ballot_type"),
    [
        ("greedy", "knapsack"),
        ("greedy", "ranked"),
        ("greedy", "cumulative"),
        ("mes", "cumulative"),
        ("mes-add1", "approval"),
        ("mes-add1-greedy", "approval"),
        ("phragmen", "approval"),
    ],
)
def test_every_rule_and_ballot_type_recounts(db, tmp_path, rule, ballot_type):
    """The verifier's own rules give the published (voting.rules) result for every rule and ballot type."""
    built = build_process(db.engine, rule=rule, ballot_type=ballot_type, voters=30, replaced=5)
    write_folder(db.engine, built, tmp_path / "b")
    report = verifier.verify(tmp_path / "b")
    assert report.results[0]["selected"] == built.results[0]["selected"] or sorted(
        report.results[0]["selected"]
    ) == sorted(built.results[0]["selected"])


# --- unreadable bundles and the command line ------------------------------------------------------------------


def test_unreadable_bundles_exit_2(bundle_dir, tmp_path):
    _built, folder = bundle_dir
    (tmp_path / "junk.zip").write_bytes(b"not a zip")
    for target in (tmp_path / "junk.zip", tmp_path / "nowhere"):
        assert verifier.run(target, out=io.StringIO(), err=io.StringIO()) == 2
    meta = json.loads((folder / "bundle.json").read_text())
    (folder / "bundle.json").write_text(json.dumps(dict(meta, version=2)))
    err = io.StringIO()
    assert verifier.run(folder, out=io.StringIO(), err=err) == 2 and "version 2" in err.getvalue()
    (folder / "bundle.json").write_text(json.dumps(meta))
    (folder / "public_key.pem").write_text("garbage")
    assert verifier.run(folder, out=io.StringIO(), err=io.StringIO()) == 2
    (folder / "public_key.pem").unlink()
    assert verifier.run(folder, out=io.StringIO(), err=io.StringIO()) == 2


def _cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="mitmachen")
    sub = parser.add_subparsers(dest="command", required=True)
    audit_cli.register(sub)
    args = parser.parse_args(argv)
    return int(args.func(args))


def test_mitmachen_verify_exit_codes(bundle_dir, tmp_path, capsys):
    """`mitmachen verify BUNDLE`: 0 with a summary, 1 naming the first failure, 2 when unreadable."""
    built, folder = bundle_dir
    assert _cli(["verify", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "VALID" in out and built.key.key_id[:16] in out
    assert _cli(["verify", str(folder), "--key-id", fixed_key(5).key_id]) == 1
    rows = lines(folder)
    del rows[3]
    write_lines(folder, rows)
    assert _cli(["verify", str(folder)]) == 1
    assert "entry 3" in capsys.readouterr().err
    assert _cli(["verify", str(tmp_path / "missing.zip")]) == 2


def test_head_statement_is_shared():
    """The platform signs exactly the statement the verifier checks."""
    when = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
    root = leaf_hash(b"x")
    assert heads.statement(log_id="platform", size=3, root=root, timestamp=when) == verifier.head_statement(
        log_id="platform", size=3, root=root, timestamp="2026-01-02T03:04:05.678901Z"
    )
    key = Ed25519PrivateKey.generate()
    assert verifier.key_id(key.public_key()) == heads.keys.key_id_of(key.public_key())


def test_bundle_before_the_vote_opens_verifies(db, tmp_path):
    """A bundle of a frozen process (no ballots yet) is valid and says so."""
    from app.database import new_session
    from voting.models import Process

    key = fixed_key()
    with new_session(db.engine, write=True) as s:
        process = Process(slug="vorbereitung", title="Vorbereitung", budget_cents=100_00)
        s.add(process)
        s.flush()
        log_id = audit.process_log(process.id)
        rows: list = []
        import hashlib

        from voting.merkle import canonical_json

        digest = hashlib.sha256(canonical_json(rows)).hexdigest()
        audit.append(
            s, log_id=log_id, entry_type="process.frozen", payload={"projects": rows, "projects_hash": digest}
        )
        heads.sign_head(s, log_id=log_id, reason="demand", key=key)
        s.commit()
        built = Built(process.id, log_id, key)
    write_folder(db.engine, built, tmp_path / "b")
    report = verifier.verify(tmp_path / "b")
    assert report.entries == 1 and "not opened yet" in report.summary()
