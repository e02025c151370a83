"""The attack suite's fixtures: the local HTTP server in front of the local runtime (manual clock),
with a second brand whose dealers have the same codes as the first's."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from infra.local.http import LocalHttpServer
from infra.local.runtime import LocalRuntime
from infra.local.settings import LocalSettings
from shared.runtime import wiring
from tests.security.support import Api
from tests.unit.test_staff_views import other_brand_doc


@pytest.fixture
def api(manual_runtime: LocalRuntime) -> Iterator[Api]:
    settings = LocalSettings(http_port=0)  # the server binds a port of its own: no race for it
    server = LocalHttpServer(manual_runtime, settings).start()
    yield Api(f"http://127.0.0.1:{server.server.server_address[1]}", settings.token_secret)
    server.stop()
    manual_runtime.clock.settle(30)


@pytest.fixture
def two_brands(api: Api) -> Api:
    wiring.case_store().put_tenant(other_brand_doc(), [])
    return api
