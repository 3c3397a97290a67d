"""The open-data and audit API against its own OpenAPI document (/api/v1/openapi.json), with schemathesis
generating valid and invalid parameters for every operation, in-process against the ASGI app.

Checks per generated request: no server error (5xx), and the response (status, content type, body) conforms
to the document. Hypothesis is bounded (few examples per operation, derandomised) so the file stays well
under two minutes per database. SECURITY.md rows: ASVS V2.2.1 (server-side validation of every parameter),
CVE-2024-32469 (numeric parameters parsed, never echoed), CVE-2026-40870 (the API answers only what its
schema documents).
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.attack.conftest import World

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
EXAMPLES = 12


def _operations(app):
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", app)
    ops = []
    for result in schema.get_all_operations():
        ops.append(result.ok())
    return schema, ops


def test_every_operation_conforms_to_the_document(world: World, app):
    """ASVS V2.2.1 / CVE-2024-32469: for every documented operation, generated parameters (valid and
    invalid) never cause a 5xx and every answer matches the documented status, content type and schema."""
    schema, operations = _operations(app)
    labels = sorted(op.label for op in operations)
    # the document describes both API families; a path dropped from it would go unchecked
    assert any("/api/v1/proposals" in label for label in labels), labels
    assert any("/log/proof" in label for label in labels), labels
    failures = []
    for operation in operations:

        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            derandomize=True,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=operation.as_strategy())
        def check(case):
            response = case.call()
            case.validate_response(response, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.label}: {exc}")
    assert not failures, "\n\n".join(failures)


def test_document_is_valid_openapi(client):
    """The document itself loads and validates as OpenAPI 3.1 (schemathesis refuses an invalid one)."""
    document = client.get("/api/v1/openapi.json").json()
    assert document["openapi"].startswith("3.1")
    loaded = schemathesis.openapi.from_dict(document)
    assert len(list(loaded.get_all_operations())) >= 10


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/proposals?limit=%22%3E%3Cscript%3Ealert(1)%3C/script%3E",
        "/api/v1/proposals?cursor=%3Cscript%3E",
        "/api/v1/log/proof?index=%3Cscript%3E&size=1",
        "/api/v1/log/consistency?first=1&second=%3Csvg%20onload%3Dalert(1)%3E",
    ],
)
def test_bad_numbers_are_json_errors_without_echo(client, path):
    """CVE-2024-32469: a non-numeric value in a numeric parameter is a JSON 400 that does not repeat it."""
    response = client.get(path)
    assert response.status_code == 400, (path, response.status_code)
    assert response.headers["content-type"].startswith("application/json")
    assert "<script" not in response.text and "<svg" not in response.text
    assert set(response.json()) == {"error"}
