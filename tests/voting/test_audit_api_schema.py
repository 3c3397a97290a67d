"""The audit endpoints in the OpenAPI document (voting/audit_api_schema.py): every /api/v1 audit route is
described with exactly the query parameters it accepts, and real answers of each endpoint (entries of every
documented type, heads, proofs, the bundle, the key, errors) validate against the strict schemas."""

from __future__ import annotations

import copy
import json
import re

import jsonschema
import pytest
from starlette.routing import Route
from test_bundle import build_process

from app.accounts import services as account_services
from app.database import new_session
from app.models import User
from proposals import api_schema
from voting import audit_api_schema, audit_routes, keys, lifecycle, platform_log
from voting.models import Process

AUDIT_PATHS = set(audit_api_schema.PATHS)


@pytest.fixture
def settings_overrides(tmp_path):
    return {"data_dir": str(tmp_path / "data")}


@pytest.fixture(autouse=True)
def described():
    """The audit paths in the document as app/main.py adds them (unless it already does); the shared
    document is restored afterwards, so other tests see it unchanged."""
    paths, schemas = copy.deepcopy(api_schema.PATHS), copy.deepcopy(api_schema.SCHEMAS)
    if not AUDIT_PATHS <= set(api_schema.PATHS):
        api_schema.extend(audit_api_schema.PATHS, audit_api_schema.SCHEMAS)
    yield
    for live, saved in ((api_schema.PATHS, paths), (api_schema.SCHEMAS, schemas)):
        live.clear()
        live.update(saved)
    api_schema._cached.cache_clear()


@pytest.fixture
def doc(client) -> dict:
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    return response.json()


@pytest.fixture
def key(app) -> keys.SigningKey:
    return keys.load_or_create(keys.key_path(app.state.settings))


@pytest.fixture
def logs(db, key, make_user):
    """A finished vote (frozen, opened, ballots cast and replaced, closed, published, links destroyed) and a
    platform log with a role change, a suspension and a moderation decision."""
    built = build_process(db.engine, key=key, rule="phragmen", voters=12, replaced=2)
    with new_session(db.engine, write=True) as s:
        lifecycle.destroy_links(s, process=s.get(Process, built.process_id))
        s.commit()
    admin, target = make_user("admin"), make_user()
    with new_session(db.engine, write=True) as s:
        actor, account = s.get(User, admin.id), s.get(User, target.id)
        account_services.change_role(s, actor=actor, target=account, role="moderator")
        account_services.suspend(s, actor=actor, target=account, days=3)
        platform_log.append_moderation_decision(
            s, item="comment:42", ground="insult", outcome="hidden", moderator_id=admin.id, decision_id=3
        )
        s.commit()
    return built


def _template(path: str) -> str:
    return re.sub(r"\{(\w+)(:\w+)?\}", r"{\1}", path)


def _operation(doc: dict, template: str) -> dict:
    return doc["paths"][template]["get"]


def _validate(doc: dict, schema: dict, instance) -> None:
    jsonschema.Draft202012Validator({**schema, "components": doc["components"]}).validate(instance)


def check(client, doc: dict, template: str, path: str, status: int = 200):
    """GET ``path``: its status is documented for ``template`` and the body matches the documented content."""
    response = client.get(path)
    assert response.status_code == status, (path, response.text)
    responses = _operation(doc, template)["responses"]
    assert str(status) in responses, f"{template}: status {status} is not documented"
    content = responses[str(status)]["content"]
    media = response.headers["content-type"].split(";")[0]
    assert media in content, f"{path}: {media} not documented"
    if media == "application/json":
        _validate(doc, content[media]["schema"], response.json())
        return response.json()
    return response


def test_every_audit_route_under_api_v1_is_documented(app, doc):
    """The document covers every /api/v1 route of audit_routes, and nothing the app does not serve."""
    routes = {_template(r.path) for r in audit_routes.routes if isinstance(r, Route)}
    assert {p for p in routes if p.startswith("/api/v1/")} <= set(doc["paths"])
    assert AUDIT_PATHS <= routes
    served = {_template(getattr(r, "path", "")) for r in app.routes}
    assert AUDIT_PATHS <= served
    jsonschema.Draft202012Validator.check_schema({"components": doc["components"]})
    for ref in re.findall(r'"\$ref": "#/([^"]+)"', json.dumps(doc)):
        node = doc
        for part in ref.split("/"):
            node = node[part]
    operation_ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(operation_ids) == len(set(operation_ids))


def test_documented_query_parameters_are_exactly_the_accepted_ones(client, doc, logs):
    """An unknown parameter is refused with the list of allowed ones: it must equal the document's."""
    for template in sorted(AUDIT_PATHS):
        if not template.startswith("/api/v1/"):
            continue
        params = _operation(doc, template)["parameters"]
        documented = {p["name"] for p in params if p["in"] == "query"}
        assert {p["name"] for p in params if p["in"] == "path"} == set(re.findall(r"\{(\w+)\}", template))
        path = template.replace("{id}", str(logs.process_id))
        error = check(client, doc, template, f"{path}?unknown=1", 400)["error"]
        assert error["code"] == "invalid_parameter"
        allowed = re.search(r"Allowed: (.*)\.$", error["message"])
        accepted = set(allowed[1].split(", ")) - {"none"} if allowed else set()
        assert documented == accepted, template
    limit = next(p for p in _operation(doc, "/api/v1/log")["parameters"] if p["name"] == "limit")
    assert limit["schema"]["maximum"] == audit_routes.MAX_LIMIT
    assert limit["schema"]["default"] == audit_routes.DEFAULT_LIMIT


@pytest.mark.parametrize("kind", ["process", "platform"])
def test_real_answers_match_the_documented_schemas(client, doc, logs, kind):
    """Entries (of every documented type), heads, both proofs, the bundle and the key validate."""
    base, template = (
        (f"/api/v1/processes/{logs.process_id}", "/api/v1/processes/{id}")
        if kind == "process"
        else ("/api/v1", "/api/v1")
    )
    bundle = f"{base}/audit-bundle" if kind == "process" else f"{base}/log/audit-bundle"
    bundle_template = bundle.replace(base, template)
    zipped = check(client, doc, bundle_template, bundle)  # signs a head covering the whole log
    assert zipped.content[:2] == b"PK"
    seen, url = [], f"{base}/log?limit=3"
    while url:
        page = check(client, doc, f"{template}/log", url)
        seen += [item["entry"]["type"] for item in page["entries"]]
        url = page["next"]
    expected = {
        "process": {
            "process.frozen",
            "process.opened",
            "ballot.cast",
            "ballot.replaced",
            "process.closed",
            "tally.published",
            "links.destroyed",
        },
        "platform": {"role.changed", "account.suspended", "moderation.decision"},
    }[kind]
    assert set(seen) == expected and len(seen) == page["size"]
    head = check(client, doc, f"{template}/log/head", f"{base}/log/head")
    listed = check(client, doc, f"{template}/log/heads", f"{base}/log/heads?limit=2")
    assert listed["heads"] and listed["count"] >= 1
    sizes = [h["size"] for h in check(client, doc, f"{template}/log/heads", f"{base}/log/heads")["heads"]]
    proof = check(client, doc, f"{template}/log/proof", f"{base}/log/proof?index=0")
    assert proof["head"] == head
    check(client, doc, f"{template}/log/proof", f"{base}/log/proof?index=1&size={head['size']}")
    consistency = check(
        client, doc, f"{template}/log/consistency", f"{base}/log/consistency?first={sizes[0]}"
    )
    assert consistency["second_head"] == head
    unsigned = check(client, doc, f"{template}/log/consistency", f"{base}/log/consistency?first=1&second=2")
    if 1 not in sizes:
        assert unsigned["first_head"] is None  # a size no head was signed for: documented as null
    key = check(client, doc, "/.well-known/mitmachen-audit-key.json", "/.well-known/mitmachen-audit-key.json")
    assert key["key_id"] == head["key_id"]
    pem = check(client, doc, "/.well-known/mitmachen-audit-key.pem", "/.well-known/mitmachen-audit-key.pem")
    assert pem.text == key["public_key_pem"]


@pytest.mark.parametrize(
    ("suffix", "status"),
    [
        ("/log?limit=0", 400),
        (f"/log?limit={audit_routes.MAX_LIMIT + 1}", 400),
        ("/log?start=1&start=2", 400),
        ("/log/heads?start=-1", 400),
        ("/log/proof", 400),
        ("/log/proof?index=999999", 400),
        ("/log/proof?index=0&size=999999", 404),
        ("/log/consistency", 400),
        ("/log/consistency?first=3&second=2", 400),
        ("/audit-bundle?x=1", 400),
    ],
)
def test_errors_are_documented_with_the_error_schema(client, doc, logs, suffix, status):
    """Each 4xx answer of a vote's log is a documented status with the shared Error schema."""
    path = f"/api/v1/processes/{logs.process_id}{suffix}"
    template = "/api/v1/processes/{id}" + suffix.split("?")[0]
    body = check(client, doc, template, path, status)
    assert body["error"]["code"] == ("invalid_parameter" if status == 400 else "not_found")


def test_unknown_process_and_unsigned_log_are_documented_404s(client, doc, db):
    """No such process (every process path) and no signed head yet (the platform log's head) are 404."""
    for template in sorted(p for p in AUDIT_PATHS if "{id}" in p):
        query = {"proof": "?index=0", "consistency": "?first=0"}.get(template.rsplit("/", 1)[1], "")
        body = check(client, doc, template, template.replace("{id}", "99999") + query, 404)
        assert body["error"]["code"] == "not_found"
    for suffix, query in (("/log/head", ""), ("/log/proof", "?index=0"), ("/log/consistency", "?first=0")):
        check(client, doc, f"/api/v1{suffix}", f"/api/v1{suffix}{query}", 404)


def test_schemas_are_strict(client, doc, logs):
    """An undocumented field in an entry's payload, an unknown entry type or a field added to an answer
    does not validate: nothing reaches the open data unreviewed."""
    page = client.get(f"/api/v1/processes/{logs.process_id}/log?limit=1000").json()
    item = next(i for i in page["entries"] if i["entry"]["type"] == "ballot.cast")
    schema = {"$ref": "#/components/schemas/AuditLeaf"}
    _validate(doc, schema, item)
    bad = [
        {
            **item,
            "entry": {**item["entry"], "payload": {**item["entry"]["payload"], "voter": "x@example.org"}},
        },
        {**item, "entry": {**item["entry"], "type": "ballot.audited"}},
        {**item, "entry": {**item["entry"], "type": "process.closed"}},
        {**item, "user_id": 1},
        {**item, "leaf_hash": "ABC"},
    ]
    for instance in bad:
        with pytest.raises(jsonschema.ValidationError):
            _validate(doc, schema, instance)
