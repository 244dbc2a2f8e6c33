"""schemathesis against the server's own ``/openapi.json``: the predict and infer routes never answer 5xx.

kserve publishes the v2 ``InferenceRequest`` schema, so schemathesis generates bodies that fit it
(positive: they reach our validation) and bodies that break it (negative: kserve's schema refuses
them). The v1 and form routes publish no body schema; ``test_serving_fuzz`` fuzzes their bodies.
The model name in the path is pinned: a random one is a plain 404.

(``schemathesis.pytest.from_fixture`` fails under pytest 9 in schemathesis 4.32, so the schema is
loaded inside the test and each operation's strategy is driven by hypothesis directly.)
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable

from tests.test_serving_http import MODEL

schemathesis = pytest.importorskip("schemathesis")  # a dev dependency

PREDICT_ROUTES = r"^/(v1/models/\{model_name\}:predict|v2/models/\{model_name\}/infer|predict)$"
EXAMPLES_PER_OPERATION_AND_MODE = 40


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_predict_routes_never_answer_a_server_error(server, mode):
    from schemathesis.checks import not_a_server_error
    from schemathesis.generation import GenerationMode

    schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json").include(path_regex=PREDICT_ROUTES)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.path for op in operations} >= {"/v1/models/{model_name}:predict", "/v2/models/{model_name}/infer"}

    for operation in operations:
        path_parameters = {"model_name": MODEL} if "{model_name}" in operation.path else None
        strategy = operation.as_strategy(GenerationMode(mode), path_parameters=path_parameters)

        @given(case=strategy)
        @settings(max_examples=EXAMPLES_PER_OPERATION_AND_MODE, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))  # fmt: skip
        def call(case):
            case.call_and_validate(base_url=server.url, checks=[not_a_server_error], timeout=60)

        try:
            call()
        except Unsatisfiable:
            # Nothing to vary: the route publishes no body schema, and the path is pinned.
            assert not operation.body, f"no {mode} cases for {operation.label}"
