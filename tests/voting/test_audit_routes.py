"""Public audit API and pages: paged entries, heads, inclusion and consistency proofs that verify, the bundle
download, the signing key, "check my ballot" (receipts), the platform log of role changes (same
transaction as the change) and the staff page behind its pseudonyms."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re

import pytest
from sqlalchemy import select
from test_bundle import build_process

from app.accounts import services as account_services
from app.database import new_session
from app.models import User
from voting import audit, audit_routes, heads, keys, platform_log, receipts, verifier
from voting.merkle import leaf_hash, verify_consistency, verify_inclusion
from voting.models import Ballot, LogEntry, VoterLink


@pytest.fixture
def settings_overrides(tmp_path):
    return {"data_dir": str(tmp_path / "data")}


@pytest.fixture(autouse=True)
def audit_app(app):
    """The audit routes and the platform-log subscription, as app/main.py wires them."""
    paths = {getattr(r, "path", None) for r in app.router.routes}
    if "/audit/check" not in paths:
        app.router.routes[0:0] = audit_routes.routes
    platform_log.install(app.state.settings)
    keys.configure(app.state.settings)
    return app


@pytest.fixture
def key(app) -> keys.SigningKey:
    return keys.load_or_create(keys.key_path(app.state.settings))


@pytest.fixture
def built(db, key):
    return build_process(db.engine, key=key, rule="phragmen", voters=20, replaced=3)


def api_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"])
    return body["error"]


# --- JSON -----------------------------------------------------------------------------------------------


def test_entries_are_paged_raw_and_decoded(client, built):
    base = f"/api/v1/processes/{built.process_id}/log"
    url, seen = f"{base}?limit=7", []
    while url:
        page = client.get(url)
        assert page.status_code == 200 and page.headers["access-control-allow-origin"] == "*"
        body = page.json()
        for item in body["entries"]:
            raw = base64.b64decode(item["raw"])
            assert leaf_hash(raw).hex() == item["leaf_hash"]
            assert json.loads(raw) == item["entry"] and item["entry"]["index"] == item["index"]
            seen.append(item["index"])
        url = body["next"]
    assert seen == list(range(body["size"]))


@pytest.mark.parametrize(
    "query",
    ["limit=0", "limit=abc", "limit=5000", "start=-1", "start=1e3", "foo=1", "limit=1&limit=2"],
)
def test_bad_parameters_are_400_json(client, built, query):
    """Parameters are parsed and bounded, never echoed (CVE-2024-32469)."""
    error = api_error(client.get(f"/api/v1/processes/{built.process_id}/log?{query}"), 400)
    assert error["code"] == "invalid_parameter" and "<" not in error["message"]


def test_unknown_process_is_404_json(client, built):
    for path in (
        "/log",
        "/log/head",
        "/log/heads",
        "/log/proof?index=0",
        "/log/consistency?first=0",
        "/audit-bundle",
    ):
        assert api_error(client.get(f"/api/v1/processes/99999{path}"), 404)["code"] == "not_found"


def test_head_and_heads_verify_with_the_published_key(client, built, key):
    pem = client.get("/.well-known/mitmachen-audit-key.pem")
    assert pem.status_code == 200 and pem.content == key.public_pem
    info = client.get("/.well-known/mitmachen-audit-key.json").json()
    public = keys.load_public_pem(pem.content)
    assert info["key_id"] == key.key_id == verifier.key_id(public) and info["algorithm"] == "Ed25519"
    head = client.get(f"/api/v1/processes/{built.process_id}/log/head").json()
    assert heads.verify_head_json(head, public)
    listed = client.get(f"/api/v1/processes/{built.process_id}/log/heads?limit=2").json()
    assert listed["count"] >= 4 and len(listed["heads"]) == 2 and listed["next"]
    every = client.get(f"/api/v1/processes/{built.process_id}/log/heads?limit=1000").json()["heads"]
    assert every[-1] == head and all(heads.verify_head_json(h, public) for h in every)
    assert [h["size"] for h in every] == sorted(h["size"] for h in every)


def test_any_two_published_heads_are_consistent_through_the_api(client, built):
    every = client.get(f"/api/v1/processes/{built.process_id}/log/heads?limit=1000").json()["heads"]
    assert len(every) >= 4
    for old, new in itertools.combinations(every, 2):
        body = client.get(
            f"/api/v1/processes/{built.process_id}/log/consistency?first={old['size']}&second={new['size']}"
        ).json()
        assert body["first_head"]["root"] == old["root"] and body["second_root"] == new["root"]
        proof = [bytes.fromhex(p) for p in body["proof"]]
        assert verify_consistency(
            old["size"], new["size"], bytes.fromhex(old["root"]), bytes.fromhex(new["root"]), proof
        )
    assert api_error(
        client.get(f"/api/v1/processes/{built.process_id}/log/consistency?first=5&second=2"), 400
    )


def test_inclusion_proofs_verify_against_signed_heads(client, built, key):
    base = f"/api/v1/processes/{built.process_id}/log"
    entries = client.get(f"{base}?limit=1000").json()["entries"]
    every = client.get(f"{base}/heads?limit=1000").json()["heads"]
    for head in every[1:]:
        for index in {0, head["size"] // 2, head["size"] - 1}:
            body = client.get(f"{base}/proof?index={index}&size={head['size']}").json()
            assert body["head"] == head and body["leaf_hash"] == entries[index]["leaf_hash"]
            raw = base64.b64decode(entries[index]["raw"])
            proof = [bytes.fromhex(p) for p in body["proof"]]
            assert verify_inclusion(raw, index, head["size"], proof, bytes.fromhex(head["root"]))
    latest = client.get(f"{base}/proof?index=0").json()
    assert latest["size"] == every[-1]["size"]
    assert api_error(client.get(f"{base}/proof?index=0&size=3"), 404)["code"] == "not_found"
    assert api_error(client.get(f"{base}/proof?index={every[-1]['size']}"), 400)
    assert api_error(client.get(f"{base}/proof"), 400)


def test_audit_bundle_download_verifies(client, built, tmp_path, db):
    response = client.get(f"/api/v1/processes/{built.process_id}/audit-bundle")
    assert response.status_code == 200 and response.headers["content-type"] == "application/zip"
    assert f'filename="audit-process-{built.process_id}.zip"' in response.headers["content-disposition"]
    (tmp_path / "b.zip").write_bytes(response.content)
    report = verifier.verify(tmp_path / "b.zip")
    assert report.results and report.results[0]["selected"] == built.results[0]["selected"]
    again = client.get(f"/api/v1/processes/{built.process_id}/audit-bundle")
    assert again.content == response.content  # built once per head, served from the cache
    assert api_error(client.get(f"/api/v1/processes/{built.process_id}/audit-bundle?x=1"), 400)


def test_api_reveals_no_voter(client, built, db, make_user):
    """Ballots appear under random ids only: no account, e-mail or voter-link hash in any API answer."""
    voter = make_user(email="waehlerin@example.org")
    with new_session(db.engine, write=True) as s:
        uid = (
            s.execute(select(Ballot.ballot_uid).where(Ballot.process_id == built.process_id))
            .scalars()
            .first()
        )
        s.add(
            VoterLink(
                process_id=built.process_id, voter_hash=hashlib.sha256(b"secret").hexdigest(), ballot_uid=uid
            )
        )
        s.commit()
    text = "".join(
        client.get(f"/api/v1/processes/{built.process_id}{p}").text
        for p in ("/log?limit=1000", "/log/head", "/log/heads?limit=1000")
    )
    assert uid in text
    for secret in ("waehlerin@example.org", hashlib.sha256(b"secret").hexdigest(), f'"user": {voter.id}'):
        assert secret not in text


# --- platform log ----------------------------------------------------------------------------------------


def test_role_change_is_logged_in_the_same_transaction(db, make_user, client, tmp_path):
    """SECURITY V2.3.3: the change and its entry land together; a rolled-back change leaves no entry."""
    admin, target = make_user("admin"), make_user()
    with new_session(db.engine, write=True) as s:
        account_services.change_role(
            s, actor=s.get(User, admin.id), target=s.get(User, target.id), role="moderator"
        )
        s.rollback()
    with new_session(db.engine) as s:
        assert audit.size(s, audit.PLATFORM_LOG) == 0
        assert s.get(User, target.id).role == "resident"
    with new_session(db.engine, write=True) as s:
        account_services.change_role(
            s, actor=s.get(User, admin.id), target=s.get(User, target.id), role="moderator"
        )
        account_services.suspend(s, actor=s.get(User, admin.id), target=s.get(User, target.id), days=3)
        s.commit()
    body = client.get("/api/v1/log").json()
    assert [e["entry"]["type"] for e in body["entries"]] == ["role.changed", "account.suspended"]
    payload = body["entries"][0]["entry"]["payload"]
    assert payload["role"] == "moderator" and payload["previous"] == "resident"
    assert payload["actor"] == platform_log.pseudonym(admin.id) and payload[
        "account"
    ] == platform_log.pseudonym(target.id)
    text = json.dumps(body)
    assert admin.email not in text and target.email not in text and admin.display_name not in text
    assert body["entries"][1]["entry"]["payload"]["outcome"] == "suspended"
    assert api_error(client.get("/api/v1/log/head"), 404)["code"] == "not_found"
    download = client.get("/api/v1/log/audit-bundle")
    assert download.status_code == 200 and download.headers["content-type"] == "application/zip"
    (tmp_path / "platform.zip").write_bytes(download.content)
    assert verifier.verify(tmp_path / "platform.zip").entries == 2
    assert client.get("/api/v1/log/head").json()["reason"] == "bundle"


def test_moderation_decisions_go_to_the_platform_log(db):
    with new_session(db.engine, write=True) as s:
        appended = platform_log.append_moderation_decision(
            s, item="comment:42", ground="insult", outcome="hidden", moderator_id=7, decision_id=3
        )
        with pytest.raises(ValueError):
            platform_log.append_moderation_decision(
                s, item="", ground="x", outcome="hidden", moderator_id=7, decision_id=4
            )
        s.commit()
    entry = audit.decode(appended.entry)
    assert entry["type"] == "moderation.decision" and entry["log"] == audit.PLATFORM_LOG
    assert entry["payload"] == {
        "item": "comment:42",
        "ground": "insult",
        "outcome": "hidden",
        "decision": 3,
        "actor": platform_log.pseudonym(7),
    }


def test_staff_see_who_is_behind_the_pseudonyms(db, make_user, login, client, app):
    """The acting admin is visible to staff and admins only (SECURITY V8.2.3, field level)."""
    admin = make_user("admin", name="Adele Admin")
    target = make_user(name="Mo Derator")
    with new_session(db.engine, write=True) as s:
        account_services.change_role(
            s, actor=s.get(User, admin.id), target=s.get(User, target.id), role="moderator"
        )
        s.commit()
    assert client.get("/audit/actors").status_code == 303  # anonymous: to the login page
    from tests.conftest import Client

    for role, status in (("resident", 403), ("moderator", 403), ("staff", 200), ("admin", 200)):
        with Client(app, base_url="http://testserver", follow_redirects=False) as c:
            user = admin if role == "admin" else make_user(role)
            login(user, c=c)
            page = c.get("/audit/actors")
            assert page.status_code == status, role
            if status == 200:
                assert (
                    "Adele Admin" in page.text and "Mo Derator" in page.text and "role.changed" in page.text
                )
                assert page.headers["cache-control"] == "no-store"
    assert client.get("/api/v1/log").text.count("Adele") == 0
    with new_session(db.engine) as s:
        found = platform_log.resolve_pseudonyms(s, {platform_log.pseudonym(target.id), "0" * 32})
        assert (
            list(found) == [platform_log.pseudonym(target.id)]
            and found[platform_log.pseudonym(target.id)].id == target.id
        )


# --- receipts and "check my ballot" ---------------------------------------------------------------------------


def _receipt(db, built, uid: str, index: int | None = None) -> dict:
    with new_session(db.engine, write=True) as s:
        r = receipts.receipt(s, log_id=built.log_id, index=built.ballots[uid] if index is None else index)
        s.commit()
    return r


def test_receipt_names_a_head_that_includes_the_ballot(db, key):
    built = build_process(db.engine, key=key, close=False)
    uid = next(iter(built.ballots))
    with new_session(db.engine, write=True) as s:
        before = heads.count_heads(s, built.log_id)
        r = receipts.receipt(s, log_id=built.log_id, index=built.ballots[uid])
        assert heads.count_heads(s, built.log_id) == before + 1  # none covered the newest entries yet
        again = receipts.receipt(s, log_id=built.log_id, index=built.ballots[uid])
        assert heads.count_heads(s, built.log_id) == before + 1 and again["head"] == r["head"]
        s.commit()
    assert r["ballot"] == uid and r["head"]["size"] > r["index"] and r["head"]["reason"] == "receipt"
    with new_session(db.engine) as s:
        row = s.execute(
            select(LogEntry).where(LogEntry.log_id == built.log_id, LogEntry.idx == r["index"])
        ).scalar_one()
        assert r["entry_hash"] == bytes(row.leaf_hash).hex()
        result = receipts.check_receipt(s, r, key=key)
    assert (
        result["ok"]
        and result["status"] == "will_count"
        and result["proof_valid"]
        and result["consistency_valid"]
    )


def test_check_page_shows_the_verdict_and_the_proof(client, db, built, key):
    uid = next(u for u, i in built.ballots.items() if i == max(built.ballots.values()))
    r = _receipt(db, built, uid)
    page = client.get("/audit/check")
    assert (
        page.status_code == 200
        and 'id="f-receipt"' in page.text
        and page.headers["cache-control"] == "no-store"
    )
    answer = client.post_form("/audit/check", {"receipt": json.dumps(r)})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    assert 'data-status="counted"' in answer.text and r["entry_hash"] in answer.text
    with new_session(db.engine) as s:
        result = receipts.check_receipt(s, r, key=key)
    for h in result["proof"]:
        assert h in answer.text
    manual = client.post_form("/audit/check", {"ballot": uid, "index": str(r["index"])})
    assert manual.status_code == 200 and 'data-status="counted"' in manual.text


def test_check_page_statuses(client, db, built, key):
    replaced_uid = max(built.ballots, key=built.ballots.get)  # the last replacement
    with new_session(db.engine) as s:
        first = (
            s.execute(
                select(LogEntry.idx).where(
                    LogEntry.log_id == built.log_id, LogEntry.entry_type == "ballot.cast"
                )
            )
            .scalars()
            .first()
        )
        first_uid = audit.decode(
            s.execute(
                select(LogEntry.entry).where(LogEntry.log_id == built.log_id, LogEntry.idx == first)
            ).scalar_one()
        )["payload"]["ballot"]
    superseded = client.post_form("/audit/check", {"ballot": first_uid, "index": str(first)})
    assert 'data-status="superseded"' in superseded.text and str(built.ballots[first_uid]) in superseded.text
    wrong = _receipt(db, built, replaced_uid)
    wrong["entry_hash"] = "0" * 64
    assert 'data-status="mismatch"' in client.post_form("/audit/check", {"receipt": json.dumps(wrong)}).text
    elsewhere = client.post_form("/audit/check", {"ballot": replaced_uid, "index": "0"})
    assert 'data-status="mismatch"' in elsewhere.text
    unknown = client.post_form("/audit/check", {"ballot": "a" * 32, "index": "3"})
    assert 'data-status="not_found"' in unknown.text


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"receipt": "{not json"}, "receipt"),
        ({"receipt": json.dumps({"ballot": "x", "index": 1})}, "receipt"),
        ({}, "ballot"),
        ({"ballot": "abcdefgh12345678"}, "index"),
        ({"ballot": "<script>", "index": "1"}, "ballot"),
        ({"ballot": "abcdefgh12345678", "index": "-1"}, "index"),
        ({"receipt": "x" * 9000}, "receipt"),
    ],
)
def test_check_form_errors(client, built, data, field):
    """Bad input: 400, the message next to the field, nothing echoed unescaped."""
    answer = client.post_form("/audit/check", data)
    assert answer.status_code == 400
    assert f'id="e-{field}"' in answer.text and "<script>" not in answer.text.split('id="main"')[1]


def test_check_needs_csrf(client, built):
    assert client.post("/audit/check", data={"ballot": "abcdefgh12345678", "index": "1"}).status_code == 403


class TestCheckRateLimit:
    @pytest.fixture
    def settings_overrides(self, tmp_path):
        return {"data_dir": str(tmp_path / "data"), "rate_limit_enabled": True}

    def test_ballot_checks_are_rate_limited(self, client, built):
        """SECURITY V2.4.1: ballot checks are rate-limited per client."""
        token = client.csrf("/audit/check")
        statuses = [
            client.post(
                "/audit/check", data={"csrf_token": token, "ballot": "a" * 32, "index": "1"}
            ).status_code
            for _ in range(audit_routes.CHECK_LIMIT[0] + 1)
        ]
        assert statuses[:-1] == [200] * audit_routes.CHECK_LIMIT[0] and statuses[-1] == 429


def test_receipt_parsing_is_strict():
    good = {"ballot": "a" * 32, "index": 3, "log": "process:1", "entry_hash": "b" * 64}
    assert receipts.parse_receipt(json.dumps(good)).index == 3
    for bad, code in (
        ({**good, "index": True}, "bad_index"),
        ({**good, "index": -1}, "bad_index"),
        ({**good, "log": "process:0"}, "bad_log"),
        ({**good, "entry_hash": "zz"}, "bad_hash"),
        ({**good, "head": {"size": 1}}, "bad_head"),
        ([], "not_json"),
    ):
        with pytest.raises(receipts.ReceiptError) as info:
            receipts.parse_receipt(json.dumps(bad))
        assert info.value.code == code
    assert re.fullmatch(receipts.BALLOT_RE, "a" * 32)
