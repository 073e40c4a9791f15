"""The examples in the OpenAPI document (backend/web/api_examples.json): present, valid, and about real operations."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from backend.web import examples
from backend.web.api import JSON_BODY


def _operations(app):
    """(key, spec) of every declared endpoint, keyed as api_examples.json keys them."""
    from backend.web.openapi import _converter

    found = {}
    for rule in app.url_map.iter_rules():
        spec = getattr(app.view_functions.get(rule.endpoint), "api_spec", None)
        if spec is not None:
            found[examples.operation_key(spec.method, _converter.sub(r"{\1}", rule.rule))] = spec
    return found


def test_every_key_of_the_examples_file_names_an_operation(app):
    stale = set(examples.declared()) - set(_operations(app))
    assert stale == set(), f"api_examples.json has examples for operations that do not exist: {sorted(stale)}"


def test_every_request_example_is_a_valid_request(app):
    for key, spec in _operations(app).items():
        request = examples.request_example(key, spec.body)
        if spec.body is not None:
            assert request is not None, f"{key}: add a request example to backend/web/api_examples.json"
            spec.body.model_validate(request)
        else:
            assert "request" not in examples.declared().get(key, {}), f"{key} takes no body"
        query = examples.declared().get(key, {}).get("query")
        if query is not None:
            assert spec.query is not None, f"{key} takes no query"
            spec.query.model_validate(query)


def test_every_response_example_matches_its_declared_model(app):
    for key, spec in _operations(app).items():
        response = examples.declared().get(key, {}).get("response")
        if response is not None and spec.response is not None:
            try:
                spec.response.model_validate(response)
            except ValidationError as exc:
                pytest.fail(f"{key}: the recorded response no longer fits {spec.response.__name__}; record them again "
                            f"with `PYTHONPATH=. .venv/bin/python scripts/record_api_examples.py`\n{exc}")


def test_the_document_carries_the_examples(client):
    spec = client.get("/api/openapi.json").json
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            where = f"{method.upper()} {path}"
            assert "_" not in op["operationId"], where  # the viewer's deep links read "_" as a space
            for parameter in op.get("parameters", []):
                if parameter["in"] == "path":
                    assert "example" in parameter, f"{where}: path parameter {parameter['name']} has no example"
            media = op.get("requestBody", {}).get("content", {}).get(JSON_BODY)
            if media is not None:
                assert "example" in media, f"{where}: the JSON body has no example"
    resolve = spec["paths"]["/api/resolve"]["get"]
    assert {p["name"]: p.get("example") for p in resolve["parameters"]}["q"] == "see arXiv:2307.01850v2"


def test_defaults_are_the_example_of_a_body_that_needs_no_field():
    from pydantic import BaseModel

    class Defaults(BaseModel):
        size: int = 64
        name: str | None = None

    class Needs(BaseModel):
        text: str

    assert examples.request_example("POST /api/not-declared", Defaults) == {"size": 64}
    assert examples.request_example("POST /api/not-declared", Needs) is None


@pytest.mark.parametrize("key", ["GET /api/health", "POST /api/tokenize"])
def test_recorded_responses_are_in_the_document(client, key):
    entry = examples.declared().get(key, {})
    assert "response" in entry, f"run scripts/record_api_examples.py ({key} has no recorded response)"
    method, path = key.split(" ", 1)
    op = client.get("/api/openapi.json").json["paths"][path][method.lower()]
    success = min(s for s in op["responses"] if s.startswith("2"))
    assert op["responses"][success]["content"][JSON_BODY]["example"] == entry["response"]
