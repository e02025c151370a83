"""The table is the wiring's to bind (settings), not the adapter's to read at import."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from shared.adapters import table
from shared.adapters.dynamodb import DynamoCaseStore
from shared.complaints.errors import ConfigurationError
from shared.runtime import wiring
from shared.runtime.observability import logger
from shared.runtime.settings import settings


@pytest.fixture
def unbound() -> Iterator[None]:
    """The model as an import leaves it; afterwards bound as it was (other tests' runtimes)."""
    meta = table.Item.Meta
    was = (meta.table_name, meta.region, meta.host)
    table.bind("", "")
    yield
    meta.table_name, meta.region, meta.host = was
    table.Item._connection = None
    settings.cache_clear()


def test_a_store_before_the_wiring_bound_the_table_is_refused(unbound: None) -> None:
    with pytest.raises(ConfigurationError, match="not bound"):
        DynamoCaseStore(logger)


def test_the_wiring_binds_the_table_of_the_settings(unbound: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPLAINTS_TABLE_NAME", "complaints-prod-cases")
    monkeypatch.setenv("COMPLAINTS_REGION", "eu-central-1")
    monkeypatch.setenv("COMPLAINTS_DYNAMODB_ENDPOINT", "http://dynamodb.test:8000")
    settings.cache_clear()
    store = wiring.case_store()
    assert isinstance(store, DynamoCaseStore)
    meta = table.Item.Meta
    assert (meta.table_name, meta.region, meta.host) == ("complaints-prod-cases", "eu-central-1",
                                                         "http://dynamodb.test:8000")
    assert store._logger is logger  # KPI aggregates left behind are reported where the handlers log
