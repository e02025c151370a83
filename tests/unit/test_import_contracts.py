"""The import contracts of pyproject.toml ([tool.importlinter]): the code keeps them, and each one
breaks on the violation it exists for.

The layers (functions | infra > shared.runtime > shared.adapters > shared.complaints), no function
importing another, no circle inside a package: docs/architecture.md, "Layers". The checker runs as
``lint-imports`` in a process of its own: it imports the packages it reads, and a tree made up for a
violation must not meet the modules this process has imported already. No cache: nothing is left in
the tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONFIG: dict[str, Any] = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["importlinter"]


def contract(kind: str) -> str:
    """The name of the project's one contract of this type."""
    names = [c["name"] for c in CONFIG["contracts"] if c["type"] == kind]
    assert len(names) == 1, f"pyproject.toml should have one {kind} contract, has {names}"
    return str(names[0])


LAYERS, INDEPENDENCE, ACYCLIC = contract("layers"), contract("independence"), contract("acyclic_siblings")


def lint_imports(where: Path) -> subprocess.Popen[str]:
    """``lint-imports`` on the tree at ``where`` with its pyproject.toml, started (the runs of this
    module go side by side)."""
    # A wide console: each contract's verdict on the line of its name.
    env = {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1", "PYTHONPATH": str(where)}
    return subprocess.Popen([str(LINT_IMPORTS), "--no-cache", "--config", str(where / "pyproject.toml")], cwd=where,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finished(run: subprocess.Popen[str]) -> tuple[int, str]:
    output, _ = run.communicate(timeout=180)
    return run.returncode, output


def verdicts(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        for name in (LAYERS, INDEPENDENCE, ACYCLIC):
            for verdict in ("KEPT", "BROKEN"):
                if line.strip() == f"{name} {verdict}":
                    found[name] = verdict
    return found


def toml_section(config: dict[str, Any]) -> str:
    """[tool.importlinter] as TOML again (strings and lists of strings: JSON's spelling is TOML's)."""
    lines = ["[tool.importlinter]"]
    lines += [f"{key} = {json.dumps(value)}" for key, value in config.items() if key != "contracts"]
    for c in config["contracts"]:
        lines += ["", "[[tool.importlinter.contracts]]", *(f"{key} = {json.dumps(value)}" for key, value in c.items())]
    return "\n".join(lines) + "\n"


# A house in the project's shape that keeps every contract: each case below changes one room.
KEPT_TREE = {
    "shared/complaints/models.py": "",
    "shared/complaints/ports.py": "from shared.complaints import models\n",
    "shared/adapters/table.py": "from shared.complaints import models\n",
    "shared/adapters/store.py": "from shared.adapters import table\nfrom shared.complaints import ports\n",
    "shared/runtime/settings.py": "",
    "shared/runtime/wiring.py": "from shared.adapters import store\nfrom shared.runtime import settings\n",
    "shared/runtime/callers.py": "from shared.runtime import wiring\n",
    "functions/staff_api/access.py": "from shared.runtime import callers\n",
    "functions/staff_api/handler.py": "from functions.staff_api import access\n",
    "functions/reports/handler.py": "from shared.runtime import callers\n",
    "infra/catalog.py": "",
    "infra/local/runtime.py": "from infra import catalog\nfrom shared.runtime import wiring\n",
}

VIOLATIONS = {
    "an adapter reads the settings": ({"shared/adapters/table.py": "from shared.runtime import settings\n"}, LAYERS),
    "the domain imports an adapter": ({"shared/complaints/models.py": "import shared.adapters.table\n"}, LAYERS),
    "the domain imports the runtime inside a function": (
        {"shared/complaints/ports.py": "def wired() -> None:\n    from shared.runtime import wiring\n"}, LAYERS),
    "the runtime imports infra": ({"shared/runtime/settings.py": "from infra import catalog\n"}, LAYERS),
    "a function imports another function's module": (
        {"functions/reports/handler.py": "from functions.staff_api.access import caller\n"}, INDEPENDENCE),
    "two adapters import each other": (
        {"shared/adapters/table.py": "from shared.adapters import store\n"}, ACYCLIC),
    "a circle in the domain through an import for the type checker only": (
        {"shared/complaints/models.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                        "    from shared.complaints import ports\n"}, ACYCLIC),
    "a circle in the local runtime": ({"infra/catalog.py": "from infra.local import runtime\n"}, ACYCLIC),
}


def build(where: Path, changes: dict[str, str]) -> Path:
    for name, text in {**KEPT_TREE, **changes}.items():
        path = where / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, "utf-8")
    for folder in {p.parent for p in where.rglob("*.py")}:
        (folder / "__init__.py").touch()
    (where / "pyproject.toml").write_text(toml_section(CONFIG), "utf-8")
    return where


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[int, str]]:
    """The checker on this code, on the house that keeps the contracts and on each violation."""
    started = {"the code": lint_imports(ROOT), "kept": lint_imports(build(tmp_path_factory.mktemp("kept"), {}))}
    for n, (violation, (changes, _)) in enumerate(sorted(VIOLATIONS.items())):
        started[violation] = lint_imports(build(tmp_path_factory.mktemp(f"violation{n}"), changes))
    return {name: finished(run) for name, run in started.items()}


def test_the_code_keeps_its_import_contracts(runs: dict[str, tuple[int, str]]) -> None:
    code, output = runs["the code"]
    assert code == 0, output
    assert verdicts(output) == {LAYERS: "KEPT", INDEPENDENCE: "KEPT", ACYCLIC: "KEPT"}, output


def test_a_house_in_the_projects_shape_keeps_them(runs: dict[str, tuple[int, str]]) -> None:
    code, output = runs["kept"]
    assert code == 0, output
    assert verdicts(output) == {LAYERS: "KEPT", INDEPENDENCE: "KEPT", ACYCLIC: "KEPT"}, output


@pytest.mark.parametrize("violation", sorted(VIOLATIONS))
def test_each_violation_breaks_its_contract(runs: dict[str, tuple[int, str]], violation: str) -> None:
    code, output = runs[violation]
    assert code == 1, output
    assert {name for name, verdict in verdicts(output).items() if verdict == "BROKEN"} == {VIOLATIONS[violation][1]}, output
