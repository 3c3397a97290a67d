"""The audit endpoints (voting/audit_routes.py) in the OpenAPI 3.1 document of /api/v1/openapi.json.

Plain data, added to the proposals package's document by the composition root:
``api_schema.extend(audit_api_schema.PATHS, audit_api_schema.SCHEMAS)`` (this package never imports
proposals). Like the rest of the document the schemas are strict (``additionalProperties: false``), down to
the payload of every entry type of docs/verifiability.md ("The log's entries (the contract)"):
tests/voting/test_audit_api_schema.py validates real responses against them, so a field added to an entry
or an answer without being documented (and reviewed for personal data) fails the build. Errors use the
document's ``Error`` component (defined by proposals/api_schema.py).
"""

from __future__ import annotations

from typing import Any

from app.models import Role
from voting import heads
from voting.audit_routes import DEFAULT_LIMIT, MAX_LIMIT, MAX_NUMBER, PREFIX
from voting.selection import BALLOT_TYPES

MAX_PROCESS_ID = 2**31 - 1

# --- building blocks ------------------------------------------------------------------------------------


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(name: str) -> dict[str, Any]:
    return {"anyOf": [_ref(name), {"type": "null"}]}


def _object(properties: dict[str, Any], description: str = "") -> dict[str, Any]:
    schema: dict[str, Any] = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    if description:
        schema["description"] = description
    return schema


def _map(key_pattern: str, value: dict[str, Any], description: str) -> dict[str, Any]:
    """An object whose keys all match ``key_pattern`` (JSON object keys are strings)."""
    return {
        "type": "object",
        "patternProperties": {key_pattern: value},
        "additionalProperties": False,
        "description": description,
    }


COUNT = {"type": "integer", "minimum": 0, "maximum": MAX_NUMBER}
DB_ID = {"type": "integer", "minimum": 1}
CENTS = {"type": "integer", "minimum": 0, "description": "Euro cents."}
NULLABLE_COUNT = {"type": ["integer", "null"], "minimum": 0}
SCOPE = {
    "type": "integer",
    "minimum": 0,
    "description": "The ballot: 0 is the city-wide ballot, any other number the id of a district's ballot.",
}
SCOPE_KEY = "^(0|[1-9][0-9]{0,9})$"
PROJECT_KEY = "^[1-9][0-9]{0,18}$"
HASH = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "SHA-256, hex."}
SIGNATURE = {"type": "string", "pattern": "^[0-9a-f]{128}$", "description": "Ed25519 signature, hex."}
KEY_ID = {"type": "string", "pattern": "^[0-9a-f]{64}$", "description": "SHA-256 of the raw public key, hex."}
LOG_ID = {
    "type": "string",
    "pattern": "^(platform|process:[1-9][0-9]{0,9})$",
    "description": "`process:<id>` for a vote's log, `platform` for the platform log.",
}
TIME = {
    "type": "string",
    "format": "date-time",
    "pattern": r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$",
    "description": "ISO 8601 in UTC with microseconds (the only time format inside the log).",
}
PSEUDONYM = {
    "type": "string",
    "pattern": "^[0-9a-f]{32}$",
    "description": "HMAC-SHA-256 of the account id with a key of the platform, 32 hex digits: the same "
    "account always has the same pseudonym; only staff can see whose it is.",
}
NULLABLE_PSEUDONYM = {**PSEUDONYM, "type": ["string", "null"]}
TEXT = {"type": "string", "minLength": 1, "maxLength": 500}
ROLE = {"type": "string", "enum": [r.value for r in Role]}
RULE = {
    "type": "string",
    "pattern": "^[a-z0-9-]{1,40}$",
    "description": "The counting rule, e.g. `phragmen`.",
}
NEXT = {
    "type": ["string", "null"],
    "pattern": "^/api/v1/",
    "description": "Path and query of the next page (relative to the server); null on the last page.",
}
SELECTION = {
    "description": "Approval and knapsack ballots: project ids, ascending; ranked ballots: project ids in "
    "order of preference; cumulative ballots: points per project id (keys ascending, no zeros).",
    "oneOf": [
        {"type": "array", "items": DB_ID, "uniqueItems": True},
        _map(PROJECT_KEY, {"type": "integer", "minimum": 1}, "Points per project id."),
    ],
}

# --- the entries of the log (docs/verifiability.md) ------------------------------------------------------

BALLOT = _object(
    {
        "ballot": {
            "type": "string",
            "pattern": "^[A-Za-z0-9_-]{8,64}$",
            "description": "The ballot's random identifier (on the voter's receipt): it names no voter.",
        },
        "scope": SCOPE,
        "selection": SELECTION,
        "version": {"type": "integer", "minimum": 1, "description": "1, then +1 for each change."},
        "paper": {"type": "boolean", "description": "A paper ballot entered and confirmed by staff."},
    }
)
PAYLOADS: dict[str, tuple[str, dict[str, Any]]] = {
    "process.frozen": (
        "AuditProcessFrozen",
        _object(
            {
                "projects": {
                    "type": "array",
                    "items": _object({"id": DB_ID, "title": TEXT, "cost_cents": CENTS, "scope": SCOPE}),
                    "description": "Every project, by id.",
                },
                "projects_hash": {**HASH, "description": "SHA-256 of the canonical JSON of `projects`."},
            },
            "The project list is frozen.",
        ),
    ),
    "process.opened": (
        "AuditProcessOpened",
        _object(
            {
                "scopes": _map(
                    SCOPE_KEY,
                    _object(
                        {
                            "config": _ref("AuditBallotConfig"),
                            "projects": {
                                "type": "array",
                                "items": _object({"id": DB_ID, "title": TEXT, "cost_cents": CENTS}),
                            },
                        }
                    ),
                    "The rules and projects of each ballot, by scope.",
                ),
                "rule": RULE,
                "voting_starts_at": TIME,
                "voting_ends_at": TIME,
                "projects_hash": {**HASH, "description": "As in `process.frozen`."},
            },
            "Voting opens.",
        ),
    ),
    "ballot.cast": ("AuditBallotCast", {**BALLOT, "description": "A ballot is cast (online or on paper)."}),
    "ballot.replaced": (
        "AuditBallotReplaced",
        {**BALLOT, "description": "A voter changes their ballot; it replaces the earlier version."},
    ),
    "process.closed": (
        "AuditProcessClosed",
        _object(
            {"ballots": _map(SCOPE_KEY, COUNT, "The number of counted ballots, by scope.")},
            "Voting closes.",
        ),
    ),
    "tally.published": (
        "AuditTallyPublished",
        _object(
            {
                "scope": SCOPE,
                "rule": RULE,
                "selected": {"type": "array", "items": DB_ID, "description": "The selected project ids."},
                "cost_cents": CENTS,
                "budget_cents": CENTS,
            },
            "The result of one ballot is published.",
        ),
    ),
    "links.destroyed": (
        "AuditLinksDestroyed",
        _object(
            {"links": {**COUNT, "description": "Voter ↔ ballot links deleted."}},
            "Staff destroyed the voter ↔ ballot links after the result was final.",
        ),
    ),
    "role.changed": (
        "AuditRoleChanged",
        _object(
            {
                "account": PSEUDONYM,
                "role": {**ROLE, "description": "The new role."},
                "previous": {**ROLE, "description": "The role before."},
                "actor": NULLABLE_PSEUDONYM,
            },
            "An account's role changed.",
        ),
    ),
    "account.suspended": (
        "AuditAccountSuspended",
        _object(
            {
                "account": PSEUDONYM,
                "outcome": {"type": "string", "enum": ["suspended", "lifted"]},
                "until": {**TIME, "type": ["string", "null"], "description": "End of the suspension."},
                "actor": NULLABLE_PSEUDONYM,
            },
            "An account was suspended, or its suspension lifted.",
        ),
    ),
    "moderation.decision": (
        "AuditModerationDecision",
        _object(
            {
                "item": {**TEXT, "description": "What was decided on, e.g. `comment:42`."},
                "ground": {**TEXT, "description": "The ground, e.g. `insult`."},
                "outcome": {**TEXT, "description": "e.g. `hidden`."},
                "decision": {**DB_ID, "description": "The decision's id."},
                "actor": NULLABLE_PSEUDONYM,
            },
            "A moderation decision.",
        ),
    ),
}


def _entry(entry_type: str, payload: str) -> dict[str, Any]:
    return _object(
        {
            "index": {**COUNT, "description": "The entry's position in the log."},
            "log": LOG_ID,
            "type": {"type": "string", "const": entry_type},
            "at": TIME,
            "payload": _ref(payload),
        }
    )


ENTRY_SCHEMAS = {
    "AuditEntry" + payload.removeprefix("Audit"): _entry(t, payload) for t, (payload, _) in PAYLOADS.items()
}

# --- the answers ----------------------------------------------------------------------------------------

SCHEMAS: dict[str, Any] = {
    "AuditBallotConfig": _object(
        {
            "ballot_type": {"type": "string", "enum": list(BALLOT_TYPES)},
            "budget_cents": CENTS,
            "projects": _map(PROJECT_KEY, CENTS, "The cost of each project, by id."),
            "min_choices": NULLABLE_COUNT,
            "max_choices": NULLABLE_COUNT,
            "points_total": NULLABLE_COUNT,
            "points_per_project": NULLABLE_COUNT,
        },
        "The rules of one ballot.",
    ),
    **{name: schema for name, schema in PAYLOADS.values()},
    **ENTRY_SCHEMAS,
    "AuditEntry": {
        "description": "A decoded entry: canonical JSON with exactly index, log, type, at and payload; the "
        "payload depends on the type (docs/verifiability.md).",
        "oneOf": [_ref(name) for name in ENTRY_SCHEMAS],
        "discriminator": {
            "propertyName": "type",
            "mapping": {
                t: "#/components/schemas/AuditEntry" + p.removeprefix("Audit")
                for t, (p, _) in PAYLOADS.items()
            },
        },
    },
    "AuditLeaf": _object(
        {
            "index": COUNT,
            "leaf_hash": {**HASH, "description": "SHA-256(0x00 ‖ raw), hex (RFC 9162 §2.1)."},
            "raw": {
                "type": "string",
                "contentEncoding": "base64",
                "pattern": "^[A-Za-z0-9+/]*={0,2}$",
                "description": "The entry's exact bytes, base64: hash these, not a re-encoding of `entry`.",
            },
            "entry": _ref("AuditEntry"),
        },
        "One entry of the log.",
    ),
    "AuditEntryPage": _object(
        {
            "log": LOG_ID,
            "size": {**COUNT, "description": "The number of entries in the log now."},
            "start": COUNT,
            "limit": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
            "entries": {"type": "array", "items": _ref("AuditLeaf")},
            "next": NEXT,
        },
        "One page of the log's entries, in order.",
    ),
    "AuditSignedHead": _object(
        {
            "log": LOG_ID,
            "size": {**COUNT, "description": "The number of entries the head covers."},
            "root": {**HASH, "description": "The Merkle tree hash of the first `size` entries, hex."},
            "timestamp": TIME,
            "signature": {
                **SIGNATURE,
                "description": "Ed25519 over the canonical statement of (log, size, root, timestamp); see "
                "docs/verifiability.md and /.well-known/mitmachen-audit-key.pem.",
            },
            "key_id": KEY_ID,
            "reason": {
                "type": "string",
                "enum": list(heads.REASONS),
                "description": "; ".join(f"{k}: {v}" for k, v in heads.REASONS.items()) + ".",
            },
        },
        "A signed tree head.",
    ),
    "AuditHeadList": _object(
        {
            "log": LOG_ID,
            "count": {**COUNT, "description": "The number of signed heads of the log."},
            "heads": {"type": "array", "items": _ref("AuditSignedHead"), "description": "Oldest first."},
            "next": NEXT,
        },
        "One page of the log's signed heads.",
    ),
    "AuditInclusionProof": _object(
        {
            "log": LOG_ID,
            "index": COUNT,
            "size": COUNT,
            "leaf_hash": HASH,
            "proof": {"type": "array", "items": HASH, "description": "The audit path (RFC 9162 §2.1.3)."},
            "root": HASH,
            "head": _ref("AuditSignedHead"),
        },
        "Proof that entry `index` is in the tree of the signed head of `size` entries.",
    ),
    "AuditConsistencyProof": _object(
        {
            "log": LOG_ID,
            "first": COUNT,
            "second": COUNT,
            "first_root": HASH,
            "second_root": HASH,
            "proof": {"type": "array", "items": HASH, "description": "RFC 9162 §2.1.4."},
            "first_head": {**_nullable("AuditSignedHead"), "description": "The signed head of that size."},
            "second_head": {**_nullable("AuditSignedHead"), "description": "The signed head of that size."},
        },
        "Proof that the log of `first` entries is a prefix of the log of `second` entries.",
    ),
    "AuditKey": _object(
        {
            "algorithm": {"type": "string", "const": "Ed25519"},
            "key_id": KEY_ID,
            "public_key_pem": {"type": "string", "pattern": "^-----BEGIN PUBLIC KEY-----\n"},
        },
        "The public key that signs the tree heads.",
    ),
}

# --- the paths ------------------------------------------------------------------------------------------


def _query(name: str, description: str, schema: dict[str, Any], required: bool = False) -> dict[str, Any]:
    param = {"name": name, "in": "query", "description": description, "schema": schema}
    if required:
        param["required"] = True
    return param


POSITION = {"type": "integer", "minimum": 0, "maximum": MAX_NUMBER}
START = _query("start", "Position of the first item.", {**POSITION, "default": 0})
LIMIT = _query(
    "limit",
    "Items per page.",
    {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
)
INDEX = _query("index", "The entry's index (smaller than the head's size).", POSITION, required=True)
SIZE = _query("size", "The size of a signed head; default: the newest head.", POSITION)
FIRST = _query("first", "The smaller tree size.", POSITION, required=True)
SECOND = _query(
    "second", "The larger tree size (at most the log's size); default: the newest head's.", POSITION
)
PROCESS_ID = {
    "name": "id",
    "in": "path",
    "required": True,
    "description": "Process (participatory budget vote) id.",
    "schema": {"type": "integer", "minimum": 1, "maximum": MAX_PROCESS_ID},
}
NO_STORE = {"Cache-Control": {"description": "`no-store` on errors.", "schema": {"type": "string"}}}


def _json(schema: str, description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}


def _error(description: str) -> dict[str, Any]:
    return {**_json("Error", description), "headers": NO_STORE}


BAD = _error("A query parameter is unknown, repeated, malformed or out of range (code invalid_parameter).")
NO_PROCESS = "No such process."
NO_HEAD = "No signed tree head yet."


def _get(
    operation_id: str, summary: str, params: list, ok: dict[str, Any], not_found: list[str]
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": ok, "400": BAD}
    if not_found:
        responses["404"] = _error(" Or: ".join(not_found) + " (code not_found)")
    return {
        "get": {
            "operationId": operation_id,
            "summary": summary,
            "tags": ["audit"],
            "parameters": params,
            "responses": responses,
        }
    }


BUNDLE = {
    "description": "A zip with the log's entries, every signed head, the public key, the standalone verifier "
    "(verify.py) and, for a vote, its projects, rules and published results (docs/verifiability.md).",
    "headers": {
        "Content-Disposition": {
            "description": "attachment; filename=audit-process-<id>.zip (or audit-platform.zip)",
            "schema": {"type": "string"},
        }
    },
    "content": {"application/zip": {"schema": {"type": "string", "contentMediaType": "application/zip"}}},
}


def _log_paths(base: str, key: str, what: str, process: bool) -> dict[str, Any]:
    """The six paths of one kind of log: a vote's (``process``: with the path parameter ``id``) or the
    platform log."""
    pre = [PROCESS_ID] if process else []
    missing = [NO_PROCESS] if process else []
    return {
        f"{base}/log": _get(
            f"list{key}Entries",
            f"The entries of {what}, in order, paged.",
            [*pre, START, LIMIT],
            _json("AuditEntryPage", "One page of entries."),
            missing,
        ),
        f"{base}/log/head": _get(
            f"get{key}Head",
            f"The newest signed tree head of {what}.",
            pre,
            _json("AuditSignedHead", "The newest head."),
            [*missing, NO_HEAD],
        ),
        f"{base}/log/heads": _get(
            f"list{key}Heads",
            f"Every signed tree head of {what}, oldest first, paged.",
            [*pre, START, LIMIT],
            _json("AuditHeadList", "One page of heads."),
            missing,
        ),
        f"{base}/log/proof": _get(
            f"get{key}InclusionProof",
            f"Proof that an entry is included in a signed head of {what}.",
            [*pre, INDEX, SIZE],
            _json("AuditInclusionProof", "The audit path and the head it leads to."),
            [*missing, NO_HEAD, "No signed tree head of this size."],
        ),
        f"{base}/log/consistency": _get(
            f"get{key}ConsistencyProof",
            f"Proof that {what} of `first` entries is a prefix of the log of `second` entries.",
            [*pre, FIRST, SECOND],
            _json("AuditConsistencyProof", "The proof, the two roots and their signed heads, if any."),
            [*missing, NO_HEAD],
        ),
        f"{base}/{'audit-bundle' if process else 'log/audit-bundle'}": _get(
            f"get{key}AuditBundle",
            f"Everything needed to verify {what} offline, as one zip (signs a head first if needed).",
            [*pre],
            BUNDLE,
            missing,
        ),
    }


PATHS: dict[str, Any] = {
    **_log_paths(f"{PREFIX}/processes/{{id}}", "Process", "a vote's audit log", process=True),
    **_log_paths(PREFIX, "Platform", "the platform audit log", process=False),
    "/.well-known/mitmachen-audit-key.pem": {
        "get": {
            "operationId": "getAuditKeyPem",
            "summary": "The public key that signs the tree heads (PEM, SubjectPublicKeyInfo).",
            "tags": ["audit"],
            "parameters": [],
            "responses": {
                "200": {
                    "description": "The Ed25519 public key.",
                    "content": {"application/x-pem-file": {"schema": {"type": "string"}}},
                }
            },
        }
    },
    "/.well-known/mitmachen-audit-key.json": {
        "get": {
            "operationId": "getAuditKey",
            "summary": "The public key that signs the tree heads, with its id.",
            "tags": ["audit"],
            "parameters": [],
            "responses": {"200": _json("AuditKey", "The Ed25519 public key.")},
        }
    },
}
