"""schemathesis against a real my-llm-server's ``/openapi.json``: every operation, generated requests (valid and
not), sent with a real key; no 5xx, every status, content type and body as the schema declares.

The proxy forwards to a stub OpenAI-compatible upstream (tests.test_server's), so the run is deterministic;
``/v1/code`` asks that stub too. Bounded (a few examples per operation, no shrinking) to stay well under 90 s
on 2 cores.
"""

from __future__ import annotations

import threading
from http.server import ThreadingHTTPServer

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_server import _Stub, new_key, server_env, start_server

EXAMPLES = 12
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    """A server (rate limit out of the way) over a stub upstream; yields (its URL, alice's key)."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Stub)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    tmp_path = tmp_path_factory.mktemp("schema")
    upstream = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    env = server_env(tmp_path, upstream, MY_LLM_RATE_LIMIT="1000000/minute", MY_LLM_AUTH_CACHE_S="5")
    key = new_key(env, "alice")
    server = start_server(env, tmp_path / "server.log")
    try:
        yield server.url, key
    finally:
        server.stop()
        httpd.shutdown()


def _run(operation, mode: GenerationMode, url: str, headers: dict[str, str]) -> str | None:
    """Send ``EXAMPLES`` generated requests of one operation; the first failure's report, or None."""

    @given(case=operation.as_strategy(generation_mode=mode))
    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        derandomize=True,  # the same requests on every run
        phases=[Phase.explicit, Phase.generate],  # no shrinking: the first failure is reported as found
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def check(case) -> None:
        case.call_and_validate(base_url=url, headers=headers, checks=CHECKS, timeout=30)

    try:
        check()
    except Unsatisfiable:  # negative requests of an operation without parameters or body: none exist
        return None
    except BaseException as failure:  # schemathesis' FailureGroup (a BaseExceptionGroup), or a transport error
        if isinstance(failure, (KeyboardInterrupt, SystemExit)):
            raise
        return f"{operation.label} ({mode.value}): {failure}"[:3000]
    return None


def test_every_operation_answers_as_its_schema_says(api):
    url, key = api
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json")
    headers = {"Authorization": f"Bearer {key}"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 8
    failures = [
        found
        for operation in operations
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
        if (found := _run(operation, mode, url, headers))
    ]
    assert not failures, "\n\n".join(failures)
