"""Each layer's routes, made from one table, are the ones clients know: same URLs, operation ids,
parameter names and answers as when they were written out layer by layer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from control_plane.app import create_app
from control_plane.settings import ControlPlaneSettings

LAYERS = [
    ("tenants", "tenant_id", "tenant", "the layer's id"),
    ("groups", "group_id", "group", "the layer's id"),
    ("stores", "store_id", "store", "the layer's id"),
    ("devices", "device_id", "register", "the device's id"),
]
ANSWERS = {"200", "401", "403", "404", "422", "429"}
OPERATIONS = [  # method, path under the layer, the operation's name, what it may answer
    ("get", "/settings", "{}_settings", ANSWERS),
    ("put", "/settings/{key}", "set_{}_setting", ANSWERS),
    ("delete", "/settings/{key}", "delete_{}_setting", ANSWERS),
    ("post", "/settings/preview", "preview_{}", ANSWERS | {"409"}),
    ("get", "/settings/history", "{}_history", ANSWERS),
    ("post", "/settings/rollback", "rollback_{}", ANSWERS | {"409"}),
]


@pytest.fixture(scope="module")
def spec(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    database = Path(tmp_path_factory.mktemp("spec")) / "cloud.db"
    settings = ControlPlaneSettings(database_url=f"sqlite+aiosqlite:///{database}")
    document: dict[str, Any] = create_app(settings).openapi()
    return document


@pytest.mark.parametrize(("kind", "id_name", "name", "id_description"), LAYERS)
@pytest.mark.parametrize(("method", "path", "operation", "answers"), OPERATIONS)
def test_a_layer_operation_keeps_its_url_id_parameter_and_answers(
    spec: dict[str, Any],
    kind: str,
    id_name: str,
    name: str,
    id_description: str,
    method: str,
    path: str,
    operation: str,
    answers: set[str],
) -> None:
    url = f"/api/config/{kind}/{{{id_name}}}{path}"
    found = spec["paths"][url][method]
    slug = url.replace("/", "_").replace("{", "_").replace("}", "_")
    assert found["operationId"] == f"{operation.format(name)}{slug}_{method}"
    assert found["summary"] == operation.format(name).replace("_", " ").title()
    layer_id = found["parameters"][0]
    assert (layer_id["name"], layer_id["in"], layer_id["required"]) == (id_name, "path", True)
    assert layer_id["schema"]["title"] == id_name.replace("_", " ").title()
    assert layer_id["description"] == id_description
    assert set(found["responses"]) == answers
