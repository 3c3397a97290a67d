"""Audit bundles: a realistic process built through the models, its bundle as zip and folder, golden files
that keep format version 1 stable, the single-file verify.py in an isolated interpreter, and streaming.

``build_process`` (also used by test_verifier.py and test_audit_routes.py) writes what the ballot and
lifecycle services write: the project list at freeze and at opening, ballots under random ids with
``ballot.cast``/``ballot.replaced`` entries, ``process.closed`` with the counts, signed heads, published
tally runs computed with voting.rules and their ``tally.published`` entries.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import os
import random
import subprocess
import sys
import zipfile
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from sqlalchemy import select

from app.database import new_session
from voting import audit, bundle, heads, keys, verifier
from voting.merkle import canonical_json
from voting.models import Ballot, Process, Project, TallyRun
from voting.rules import Profile, tally
from voting.selection import BallotConfig, validate

GOLDEN = Path(__file__).resolve().parent / "golden" / "bundle-v1"
T0 = dt.datetime(2026, 3, 1, 8, 0, tzinfo=dt.UTC)


def fixed_key(seed: int = 1) -> keys.SigningKey:
    private = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32)
    return keys.SigningKey(private, keys.key_id_of(private.public_key()), Path("/nonexistent/test-key.pem"))


@dataclass
class Built:
    process_id: int
    log_id: str
    key: keys.SigningKey
    results: dict[int, dict] = field(default_factory=dict)
    ballots: dict[str, int] = field(default_factory=dict)  # ballot uid -> log index of its latest version


VOTE_TYPE = {"approval": "approval", "knapsack": "approval", "cumulative": "cumulative", "ranked": "ordinal"}


def _selection(rng: random.Random, config: BallotConfig) -> list[int] | dict[str, int]:
    ids = sorted(config.project_costs)
    if config.ballot_type == "cumulative":
        points: dict[str, int] = {}
        left = config.points_total or 5
        for pid in rng.sample(ids, rng.randint(1, 3)):
            if left:
                points[str(pid)] = rng.randint(1, min(left, config.points_per_project or left))
                left -= points[str(pid)]
        return validate(config, points)
    if config.ballot_type == "knapsack":
        rng.shuffle(ids)
        picked, total = [], 0
        for pid in ids:
            if total + config.project_costs[pid] <= config.budget_cents and rng.random() < 0.6:
                picked.append(pid)
                total += config.project_costs[pid]
        return validate(config, picked or [min(config.project_costs, key=config.project_costs.get)])
    k = rng.randint(max(1, config.min_choices), config.max_choices or len(ids))
    return validate(config, rng.sample(ids, k))


def build_process(
    engine,
    *,
    key: keys.SigningKey | None = None,
    rule: str = "greedy",
    ballot_type: str = "approval",
    voters: int = 24,
    replaced: int = 4,
    seed: int = 7,
    close: bool = True,
    publish: bool = True,
    process_id: int | None = None,
    inject=None,
    publish_wrong: bool = False,
) -> Built:
    """A process with 6 projects, ballots (some on paper, some replaced), a close and published results,
    everything logged and signed at fixed times (ids fixed too when ``process_id`` is given, for golden
    files). Returns the ids and the expected results."""
    key = key or fixed_key()
    rng = random.Random(seed)
    costs = [30_000_00, 25_000_00, 20_000_00, 45_000_00, 10_000_00, 15_000_00]
    budget = 80_000_00
    with new_session(engine, write=True) as db:
        process = Process(
            id=process_id,
            slug=f"haushalt-{seed}-{rule}-{ballot_type}",
            title="Bürgerbudget 2026",
            budget_cents=budget,
            ballot_type=ballot_type,
            rule=rule,
            min_choices=1,
            max_choices=3 if ballot_type in ("approval", "ranked") else None,
            points_total=5 if ballot_type == "cumulative" else None,
            points_per_project=3 if ballot_type == "cumulative" else None,
            voting_starts_at=T0,
            voting_ends_at=T0 + dt.timedelta(days=14),
            created_at=T0 - dt.timedelta(days=30),
            updated_at=T0,
        )
        db.add(process)
        db.flush()
        projects = []
        for k, cost in enumerate(costs):
            project = Project(
                id=(process.id * 100 + 9 + k) if process_id else None,
                process_id=process.id,
                title=f"Projekt {k + 1}",
                cost_cents=cost,
                position=k,
                created_at=T0 - dt.timedelta(days=20),
            )
            db.add(project)
            projects.append(project)
        db.flush()
        log_id = audit.process_log(process.id)
        config = BallotConfig(
            ballot_type=ballot_type,
            budget_cents=budget,
            project_costs={p.id: p.cost_cents for p in projects},
            min_choices=process.min_choices,
            max_choices=process.max_choices,
            points_total=process.points_total,
            points_per_project=process.points_per_project,
        )
        rows = sorted(
            ({"id": p.id, "title": p.title, "cost_cents": p.cost_cents, "scope": 0} for p in projects),
            key=lambda r: r["id"],
        )
        process.projects_hash = hashlib.sha256(canonical_json(rows)).hexdigest()
        process.frozen_at = T0 - dt.timedelta(days=1)
        audit.append(
            db,
            log_id=log_id,
            entry_type="process.frozen",
            payload={"projects_hash": process.projects_hash, "projects": rows},
            at=process.frozen_at,
        )
        process.voting_opened_at = T0
        audit.append(
            db,
            log_id=log_id,
            entry_type="process.opened",
            payload={
                "scopes": {
                    "0": {
                        "config": config.to_json(),
                        "projects": [
                            {"id": p.id, "title": p.title, "cost_cents": p.cost_cents} for p in projects
                        ],
                    }
                },
                "rule": rule,
                "voting_starts_at": audit.format_time(T0),
                "voting_ends_at": audit.format_time(T0 + dt.timedelta(days=14)),
                "projects_hash": process.projects_hash,
            },
            at=T0,
        )
        heads.sign_head(db, log_id=log_id, reason="demand", key=key, at=T0 + dt.timedelta(seconds=1))
        built = Built(process.id, log_id, key)
        current: dict[str, list | dict] = {}
        uids = [f"{rng.getrandbits(128):032x}" for _ in range(voters)]
        when = T0 + dt.timedelta(hours=1)
        for n, uid in enumerate(uids):
            selection = _selection(rng, config)
            paper = n % 7 == 6
            ballot = Ballot(
                process_id=process.id,
                ballot_uid=uid,
                selection=canonical_json(selection).decode(),
                is_paper=paper,
                cast_at=when,
                updated_at=when,
            )
            appended = audit.append(
                db,
                log_id=log_id,
                entry_type="ballot.cast",
                payload={"ballot": uid, "scope": 0, "selection": selection, "version": 1, "paper": paper},
                at=when,
            )
            ballot.log_index = appended.index
            db.add(ballot)
            current[uid] = selection
            built.ballots[uid] = appended.index
            when += dt.timedelta(minutes=17)
            if n % 8 == 7:
                heads.sign_head(db, log_id=log_id, reason="interval", key=key, at=when)
        db.flush()
        for uid in uids[:replaced]:
            ballot = db.execute(select(Ballot).where(Ballot.ballot_uid == uid)).scalar_one()
            selection = _selection(rng, config)
            ballot.version += 1
            ballot.selection = canonical_json(selection).decode()
            appended = audit.append(
                db,
                log_id=log_id,
                entry_type="ballot.replaced",
                payload={
                    "ballot": uid,
                    "scope": 0,
                    "selection": selection,
                    "version": ballot.version,
                    "paper": False,
                },
                at=when,
            )
            ballot.log_index = appended.index
            current[uid] = selection
            built.ballots[uid] = appended.index
            when += dt.timedelta(minutes=5)
        if inject is not None:
            inject(db, built, when)
        if close:
            closed = T0 + dt.timedelta(days=14)
            process.voting_closed_at = closed
            audit.append(
                db,
                log_id=log_id,
                entry_type="process.closed",
                payload={"ballots": {"0": len(current)}},
                at=closed,
            )
            heads.sign_head(db, log_id=log_id, reason="close", key=key, at=closed + dt.timedelta(seconds=1))
            profile = Profile.build(
                [(str(p.id), Fraction(p.cost_cents, 100)) for p in projects],
                Fraction(budget, 100),
                [
                    {str(k): v for k, v in s.items()} if isinstance(s, dict) else [str(i) for i in s]
                    for s in current.values()
                ],
                VOTE_TYPE[ballot_type],
            )
            outcome = tally(rule, profile)
            result = {
                "scope": 0,
                "rule": rule,
                "selected": [int(i) for i in outcome.selected],
                "cost_cents": int(outcome.cost * 100),
                "budget_cents": budget,
                "ballots": len(current),
                "projects": [],
                "details": {},
            }
            built.results[0] = result
            if publish:
                published = closed + dt.timedelta(days=1)
                db.add(
                    TallyRun(
                        process_id=process.id,
                        scope=0,
                        rule=rule,
                        status="done",
                        progress=100,
                        result=canonical_json(result).decode(),
                        ballots=len(current),
                        started_at=published,
                        finished_at=published,
                        published_at=published,
                    )
                )
                logged = {k: result[k] for k in ("scope", "rule", "selected", "cost_cents", "budget_cents")}
                if publish_wrong:  # the operator publishes (and signs) another result than the ballots give
                    logged["selected"] = [p.id for p in projects if p.id not in result["selected"]][:1]
                audit.append(db, log_id=log_id, entry_type="tally.published", payload=logged, at=published)
                process.results_published_at = published
                heads.sign_head(
                    db, log_id=log_id, reason="demand", key=key, at=published + dt.timedelta(seconds=1)
                )
        db.add(process)
        db.commit()
    return built


def write_folder(engine, built: Built, folder: Path) -> dict:
    with new_session(engine) as db:
        return bundle.write_folder(
            db, log_id=built.log_id, folder=folder, key=built.key, created_at=T0 + dt.timedelta(days=20)
        )


# --- tests ------------------------------------------------------------------------------------------------


def test_bundle_zip_and_folder_hold_the_same_files_and_verify(db, tmp_path):
    """A realistic bundle verifies as a zip and as a folder; both hold the same bytes."""
    built = build_process(db.engine)
    folder = tmp_path / "folder"
    meta = write_folder(db.engine, built, folder)
    archive = tmp_path / "bundle.zip"
    with new_session(db.engine) as s, open(archive, "wb") as fh:
        bundle.write_zip(
            s, log_id=built.log_id, target=fh, key=built.key, created_at=T0 + dt.timedelta(days=20)
        )
    with zipfile.ZipFile(archive) as zf:
        assert sorted(zf.namelist()) == sorted(meta["files"])
        for name in meta["files"]:
            assert zf.read(name) == (folder / name).read_bytes(), name
    for path in (folder, archive):
        report = verifier.verify(path)
        assert report.entries == meta["entries"] and report.process == built.process_id
        assert report.results == [
            {
                k: built.results[0][k]
                for k in ("scope", "rule", "selected", "cost_cents", "budget_cents", "ballots")
            }
        ]
    assert verifier.run(archive, out=io.StringIO(), err=io.StringIO()) == 0


def test_bundle_covers_exactly_the_newest_head(db, tmp_path):
    """Entries appended after the newest signed head are left out until a head covers them; ``prepare``
    signs one for the download."""
    built = build_process(db.engine)
    with new_session(db.engine, write=True) as s:
        audit.append(s, log_id=built.log_id, entry_type="links.destroyed", payload={"links": 24})
        s.commit()
    meta = write_folder(db.engine, built, tmp_path / "a")
    with new_session(db.engine) as s:
        assert meta["entries"] == audit.size(s, built.log_id) - 1
    assert verifier.verify(tmp_path / "a").entries == meta["entries"]
    with new_session(db.engine, write=True) as s:
        bundle.prepare(s, log_id=built.log_id, key=built.key)
        s.commit()
    meta = write_folder(db.engine, built, tmp_path / "b")
    report = verifier.verify(tmp_path / "b")
    assert report.entries == meta["entries"] == meta["entries"] and report.heads == meta["heads"]
    with new_session(db.engine) as s:
        assert meta["entries"] == audit.size(s, built.log_id)
        assert heads.latest_head(s, built.log_id).reason == "bundle"


def test_golden_bundle_format_v1(db, tmp_path):
    """Golden files keep bundle format version 1 stable (regenerate with UPDATE_GOLDEN=1 only together with a
    format version bump and docs/verifiability.md)."""
    built = build_process(db.engine, voters=6, replaced=1, process_id=41, seed=3)
    folder = tmp_path / "golden"
    write_folder(db.engine, built, folder)
    names = [
        "bundle.json",
        "entries.jsonl",
        "heads.json",
        "public_key.pem",
        "projects.json",
        "rule.json",
        "result.json",
        "README.txt",
    ]
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.mkdir(parents=True, exist_ok=True)
        for name in names:
            (GOLDEN / name).write_bytes((folder / name).read_bytes())
    for name in names:
        assert (folder / name).read_bytes() == (GOLDEN / name).read_bytes(), (
            f"{name} differs from the golden file"
        )
    meta = json.loads((GOLDEN / "bundle.json").read_text())
    assert meta["format"] == verifier.BUNDLE_FORMAT and meta["version"] == verifier.BUNDLE_VERSION == 1
    # the golden bundle itself stays verifiable by the current verifier
    golden_copy = tmp_path / "golden-copy"
    golden_copy.mkdir()
    for name in names:
        (golden_copy / name).write_bytes((GOLDEN / name).read_bytes())
    assert verifier.verify(golden_copy).process == 41


def test_verify_py_is_the_concatenated_verifier(monkeypatch):
    """verify.py concatenates merkle, selection, verifier_rules and verifier without their imports of each
    other; two modules defining one name would be refused."""
    source = bundle.verifier_source()
    assert not [
        line for line in source.splitlines() if line.lstrip().startswith(("from voting", "import voting"))
    ]
    assert source.count("from __future__ import annotations") == 1
    for module in bundle.VERIFIER_MODULES:
        assert f"# voting/{module}.py" in source
    compile(source, "verify.py", "exec")
    for line in source.splitlines():
        if line.startswith(("import ", "from ")):
            top = line.split()[1].split(".")[0]
            assert top in sys.stdlib_module_names or top == "cryptography", line
    assert "recount = tally" in source  # an aliased import becomes an assignment
    monkeypatch.setattr(bundle, "VERIFIER_MODULES", ("merkle", "verifier_rules", "merkle"))
    with pytest.raises(bundle.BundleError, match="defined in both"):
        bundle.verifier_source()


def _isolated_path(tmp_path: Path) -> Path:
    """A folder holding only cryptography (and what it needs): the journalist's site-packages."""
    import cryptography

    site = tmp_path / "site"
    site.mkdir()
    root = Path(cryptography.__file__).resolve().parent.parent
    for name in os.listdir(root):
        if name.startswith(("cryptography", "cffi", "_cffi_backend", "pycparser")):
            (site / name).symlink_to(root / name)
    return site


def test_standalone_verify_py_runs_in_a_bare_interpreter(db, tmp_path):
    """The generated verify.py validates a real bundle in a fresh interpreter (-I -S) that has only the
    standard library and cryptography: no voting, app, numpy or SQLAlchemy; tampering gives exit 1."""
    built = build_process(db.engine, rule="mes-add1", voters=30)
    folder = tmp_path / "bundle"
    write_folder(db.engine, built, folder)
    site = _isolated_path(tmp_path)
    runner = (
        "import sys, runpy\n"
        f"sys.path.insert(0, {str(site)!r})\n"
        "for banned in ('numpy', 'sqlalchemy', 'voting', 'app', 'starlette'):\n"
        "    try:\n"
        "        __import__(banned)\n"
        "    except ImportError:\n"
        "        pass\n"
        "    else:\n"
        "        raise SystemExit('importable: ' + banned)\n"
        "sys.argv = ['verify.py', sys.argv[1]]\n"
        "runpy.run_path('verify.py', run_name='__main__')\n"
    )

    def run(target: Path) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-I", "-S", "-c", runner, str(target)],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": os.environ.get("PATH", "")},
        )

    done = run(folder)
    assert done.returncode == 0, done.stderr
    assert "VALID" in done.stdout and "equal to the published result" in done.stdout
    archive = tmp_path / "b.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.iterdir():
            zf.write(path, path.name)
    assert run(archive).returncode == 0
    (folder / "result.json").write_text(
        (folder / "result.json").read_text().replace('"cost_cents": ', '"cost_cents": 1'), encoding="utf-8"
    )
    done = run(folder)
    assert done.returncode == 1 and "result.json" in done.stderr
    assert run(tmp_path / "missing.zip").returncode == 2


def test_bundle_is_streamed_from_the_database(db, tmp_path, monkeypatch):
    """Entries reach the archive batch by batch through audit.iter_entries (never the whole log at once)."""
    built = build_process(db.engine, voters=40, replaced=0)
    batches: list[int] = []
    original = audit.entries

    def spy(session, log_id, *, start=0, limit=100):
        rows = original(session, log_id, start=start, limit=min(limit, 10))
        batches.append(len(rows))
        return rows

    monkeypatch.setattr(audit, "entries", spy)
    write_folder(db.engine, built, tmp_path / "b")
    assert max(batches) <= 10 and sum(batches) >= 40
    assert verifier.verify(tmp_path / "b").entries == sum(batches)


def test_platform_log_bundle(db, tmp_path):
    """The platform log has a bundle too (no process files): integrity, heads and signatures."""
    key = fixed_key()
    with new_session(db.engine, write=True) as s:
        for n in range(5):
            audit.append(s, log_id=audit.PLATFORM_LOG, entry_type="moderation.decision", payload={"n": n})
        heads.sign_head(s, log_id=audit.PLATFORM_LOG, reason="demand", key=key)
        s.commit()
    with new_session(db.engine) as s:
        meta = bundle.write_folder(s, log_id=audit.PLATFORM_LOG, folder=tmp_path / "p", key=key)
    assert meta["process"] is None and "result.json" not in meta["files"]
    report = verifier.verify(tmp_path / "p")
    assert report.entries == 5 and report.process is None


def test_bundle_refuses_a_log_without_heads(db, tmp_path):
    """No bundle without a signed head (nothing would vouch for the entries), none for unknown logs."""
    with new_session(db.engine, write=True) as s:
        audit.append(s, log_id=audit.PLATFORM_LOG, entry_type="moderation.decision", payload={})
        s.commit()
    with new_session(db.engine) as s:
        with pytest.raises(bundle.BundleError, match="no signed tree head"):
            bundle.write_folder(s, log_id=audit.PLATFORM_LOG, folder=tmp_path / "x", key=fixed_key())
        with pytest.raises(bundle.BundleError, match="no process"):
            bundle.write_folder(s, log_id="process:999", folder=tmp_path / "y", key=fixed_key())
        with pytest.raises(bundle.BundleError, match="unknown log"):
            bundle.write_folder(s, log_id="elsewhere", folder=tmp_path / "z", key=fixed_key())
