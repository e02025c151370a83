"""The Lambda package: built by CDK's local bundling hook, without Docker and, here, without PyPI.

pip is the one step that needs the network; these tests replace it with a stand-in that
records the command and installs a fake distribution, and let CDK run everything else.
"""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from pathlib import Path

import pytest
from aws_cdk import App, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk.assertions import Template

from infra import catalog
from infra.app import as_bool
from infra.constructs import bundling


class FakePip:
    """Records pip's command line; installs one fake distribution into ``--target``."""

    def __init__(self) -> None:
        self.commands: list[list[str]] = []

    def __call__(self, command: Sequence[str]) -> None:
        self.commands.append(list(command))
        target = Path(command[command.index("--target") + 1])
        (target / "pydantic").mkdir(parents=True)
        (target / "pydantic" / "__init__.py").write_text("VERSION = 'fake'\n", encoding="utf-8")
        (target / "bin").mkdir()
        (target / "bin" / "dotenv").write_text("#!/bin/sh\n", encoding="utf-8")


def _package(code: lambda_.Code, outdir: Path) -> Path:
    """Synthesise one function with ``code``; the staged directory its template entry names."""
    stack = Stack(App(outdir=str(outdir)), "bundled")
    lambda_.Function(stack, "Fn", code=code, handler="functions/workflow/handler.handler",
                     runtime=bundling.RUNTIME)
    (function,) = Template.from_stack(stack).find_resources("AWS::Lambda::Function").values()
    key = str(function["Properties"]["Code"]["S3Key"])
    return outdir / f"asset.{key.removesuffix('.zip')}"


def test_runtime_requirements_are_pyprojects_pins() -> None:
    pyproject = tomllib.loads((catalog.ROOT / "pyproject.toml").read_text("utf-8"))
    assert bundling.runtime_requirements() == tuple(pyproject["project"]["dependencies"])


def test_unpinned_requirements_are_refused(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["boto3==1.0", "pydantic>=2"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="pydantic>=2"):
        bundling.runtime_requirements(pyproject)


def test_the_lambda_lock_holds_every_pin_and_every_package_it_needs() -> None:
    pins = bundling.check_lock()
    # Every runtime dependency at the version the development lock has (one resolution, two files),
    # and each with its hashes.
    dev = bundling.locked(catalog.ROOT / "requirements.lock")
    assert pins and all(dev.get(name) == version for name, version in pins.items()), pins
    text = bundling.LAMBDA_LOCK.read_text("utf-8")
    assert text.count("--hash=sha256:") >= len(pins)
    assert {"botocore", "pydantic-core", "typing-extensions"} <= set(pins)  # transitive ones too


def test_a_stale_lambda_lock_is_refused(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[project]\ndependencies = ["boto3==1.0"]\n', encoding="utf-8")
    with pytest.raises(ValueError, match="make lock"):
        bundling.check_lock(pyproject)


def test_bundle_is_our_packages_plus_linux_wheels_of_the_lock(tmp_path: Path) -> None:
    pip = FakePip()
    package = _package(bundling.lambda_code(with_dependencies=True, install=pip), tmp_path)

    (command,) = pip.commands
    assert command[command.index("--platform") + 1] == "manylinux2014_x86_64"
    assert command[command.index("--python-version") + 1] == "3.11"
    assert {"--only-binary=:all:", "--require-hashes", "--no-deps"} <= set(command)
    assert command[-2:] == ["-r", str(bundling.LAMBDA_LOCK)]
    # CDK gave the bundler its staging directory; what is staged there is what deploys.
    assert (package / "pydantic" / "__init__.py").is_file()
    assert not (package / "bin").exists()
    for spec in catalog.FUNCTIONS:
        module = spec.handler.rsplit(".", 1)[0].replace(".", "/")
        assert (package / f"{module}.py").is_file(), spec.name
    assert (package / "shared" / "runtime" / "settings.py").is_file()
    sources = {p.relative_to(package) for p in package.rglob("*.py")}
    assert not {s for s in sources if s.parts[0] not in ("functions", "shared", "pydantic")}
    # Bytecode for the runtime, built from our sources, none copied from this checkout.
    bytecode = list((package / "shared" / "runtime" / "__pycache__").glob("settings.cpython-311.pyc"))
    assert len(bytecode) == 1


def test_without_dependencies_pip_never_runs(tmp_path: Path) -> None:
    pip = FakePip()
    package = _package(bundling.lambda_code(with_dependencies=False, install=pip), tmp_path)
    assert pip.commands == []
    assert (package / "functions" / "workflow" / "handler.py").is_file()
    assert not (package / "pydantic").exists()
    assert bundling.asset_hash(None) != bundling.asset_hash(bundling.LAMBDA_LOCK)


def test_the_package_changes_when_a_pin_does(tmp_path: Path) -> None:
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    a.write_text("pydantic==2.14.3 \\\n    --hash=sha256:00\n", encoding="utf-8")
    b.write_text("pydantic==2.14.4 \\\n    --hash=sha256:00\n", encoding="utf-8")
    assert bundling.asset_hash(a) != bundling.asset_hash(b)


@pytest.mark.parametrize(("value", "expected"), [(None, True), (True, True), ("false", False), ("True", True)])
def test_cli_context_text_is_understood(value: object, expected: bool) -> None:
    assert as_bool(value, default=True) is expected


def test_cli_context_typos_are_refused() -> None:
    with pytest.raises(ValueError, match="flase"):
        as_bool("flase", default=True)
