"""The OpenAPI document describes the service as it behaves: schemathesis generates
requests from it (valid and invalid), sends them to a running server, and checks every
answer against the document."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from endpoint_server import make_app, running, secret
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis.errors import Unsatisfiable

schemathesis = pytest.importorskip("schemathesis")

STATUSES: dict[str, set[int]] = {}
"""Status codes seen per operation and mode."""
EXAMPLES_PER_OPERATION = 12
"""Generated requests per operation and mode: enough to find a mismatch, bounded in time."""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("openapi") / "home"
    with running(make_app(home, ids=["rosie-companion"], care=False)) as url:
        auth = {"Authorization": f"Bearer {secret('acme', 'staff')}"}
        body = {"model": "rosie-companion", "user": "ann",
                "messages": [{"role": "user", "content": "hello"}]}
        assert httpx.post(url + "/v1/chat/completions", json=body, headers=auth).is_success
        yield url


@pytest.fixture(scope="module")
def document(server: str) -> dict[str, Any]:
    found: dict[str, Any] = httpx.get(server + "/openapi.json").json()
    return found


def test_every_route_is_documented_with_its_errors(document: dict[str, Any]) -> None:
    paths = document["paths"]
    for route in ("/v1/models", "/v1/chat/completions", "/v1/users/{user}/memories",
                  "/v1/users/{user}/export", "/v1/users/{user}", "/v1/admin/audit",
                  "/v1/admin/referrals", "/healthz"):
        assert route in paths, route
    for route, methods in paths.items():
        for method, operation in methods.items():
            responses = operation["responses"]
            assert "422" not in responses, (route, method)  # validation errors are 400s
            if route.startswith("/v1/"):
                assert {"400", "401", "403", "429"} <= set(responses), (route, method)
                assert operation["security"] == [{"ApiKey": []}], (route, method)
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {"type": "http", "scheme": "bearer",
                                 "description": schemes["ApiKey"]["description"]}
    chat = paths["/v1/chat/completions"]["post"]["responses"]["200"]["content"]
    assert set(chat) == {"application/json", "text/event-stream"}
    error = document["components"]["schemas"]["ErrorEnvelope"]
    assert error["required"] == ["error"]


def test_schemathesis_finds_no_mismatch(server: str) -> None:
    # Unknown query parameters are ignored, as by nearly every web server; the API key is
    # sent with every request (what happens without one, ignored_auth checks).
    config = schemathesis.Config.from_dict({"generation": {
        "allow-extra-parameters": False, "with-security-parameters": False}})
    schema = schemathesis.openapi.from_url(server + "/openapi.json", config=config)
    auth = {"Authorization": f"Bearer {secret('acme', 'staff')}"}
    # Valid per the schema is not always meaningful (a conversation without a user
    # message, an unknown persona): such requests get a 400 or 404, so the check that
    # every schema-valid request succeeds does not apply here.
    excluded = [schemathesis.checks.CHECKS.get_by_names(["positive_data_acceptance"])[0]]
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 9
    for operation in operations:
        for mode in (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(generation_mode=mode)
            _run(strategy, server, auth, excluded, failures, f"{operation.label} {mode.value}")
    assert not failures, "\n\n".join(failures[:5])
    # The documented examples reached real answers, streamed ones included.
    assert 200 in STATUSES["POST /v1/chat/completions positive"]
    assert 400 in STATUSES["POST /v1/chat/completions negative"]


def _run(strategy: st.SearchStrategy[Any], server: str, auth: dict[str, str],
         excluded: list[Any], failures: list[str], label: str) -> None:
    @settings(max_examples=EXAMPLES_PER_OPERATION, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        response = case.call_and_validate(base_url=server, headers=auth,
                                          excluded_checks=excluded, timeout=30)
        STATUSES.setdefault(label, set()).add(response.status_code)

    try:
        check()
    except Unsatisfiable:
        pass  # no invalid request exists for this operation (it takes no input)
    except Exception as exc:  # collect every operation's failure, then report them together
        failures.append(f"{label}: {exc}")
