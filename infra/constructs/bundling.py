"""The Lambda package, built on this machine without Docker.

One asset serves every function: our two packages (``functions/``, ``shared/``) plus the
runtime dependencies pinned in ``pyproject.toml``, installed by pip as Linux wheels for
the Lambda runtime (``--platform manylinux2014_x86_64 --only-binary=:all:``), whatever
the machine that synthesises. With ``with_dependencies=False`` (tests, offline checks)
pip is not run and the package holds our code only: such a package deploys, but its
functions cannot import their dependencies, so ``make deploy`` always bundles.
"""

from __future__ import annotations

import compileall
import hashlib
import py_compile
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import jsii
from aws_cdk import AssetHashType, BundlingOptions, DockerImage, FileSystem, ILocalBundling
from aws_cdk import aws_lambda as lambda_

from infra import catalog

PYTHON_VERSION = "3.11"  # the interpreter the code base and its tests target (pyproject: >=3.11)
RUNTIME = lambda_.Runtime.PYTHON_3_11
PLATFORM = "manylinux2014_x86_64"  # Lambda's default architecture
PACKAGES = ("functions", "shared")  # what of this repository the functions import
_NOT_PACKAGED = ("__pycache__", "*.pyc", "*.pyo")

Installer = Callable[[Sequence[str]], None]


def runtime_requirements(pyproject: Path = catalog.ROOT / "pyproject.toml") -> tuple[str, ...]:
    """``[project].dependencies``: every one pinned (``name==version``), or the package drifts."""
    requirements = tuple(tomllib.loads(pyproject.read_text("utf-8"))["project"]["dependencies"])
    unpinned = [r for r in requirements if "==" not in r]
    if unpinned:
        raise ValueError(f"runtime dependencies must be pinned with '==': {unpinned}")
    return requirements


def pip_command(target: Path, requirements: Sequence[str]) -> list[str]:
    """Linux wheels for the runtime's interpreter, never an sdist built for this machine."""
    return [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--platform", PLATFORM, "--implementation", "cp", "--python-version", PYTHON_VERSION,
        "--only-binary=:all:", "--target", str(target), *requirements,
    ]


def run_pip(command: Sequence[str]) -> None:
    # The command is built above from pyproject's pins; no shell is involved.
    subprocess.run(list(command), check=True)  # noqa: S603


@jsii.implements(ILocalBundling)
class LocalBundling:
    """CDK's local bundling hook: CDK calls ``try_bundle`` with the asset's output directory."""

    def __init__(self, requirements: Sequence[str], install: Installer = run_pip) -> None:
        self._requirements = tuple(requirements)
        self._install = install

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        out = Path(output_dir)
        if self._requirements:
            self._install(pip_command(out, self._requirements))
            shutil.rmtree(out / "bin", ignore_errors=True)  # console scripts: nothing in Lambda runs them
        for package in PACKAGES:
            # Fails if a dependency installed a top-level package of the same name.
            shutil.copytree(catalog.ROOT / package, out / package, ignore=shutil.ignore_patterns(*_NOT_PACKAGED))
        if sys.version_info[:2] == tuple(int(p) for p in PYTHON_VERSION.split(".")):
            # Bytecode the runtime can use as is (the package is read-only there), so a cold
            # start does not compile pydantic, botocore, ... in memory. Unchecked-hash: zip
            # timestamps must not make it stale.
            compileall.compile_dir(out, quiet=1, workers=0,
                                   invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
        return True


def asset_hash(requirements: Sequence[str]) -> str:
    """What the package is made of: our sources, the pins, the target, this bundler."""
    digest = hashlib.sha256()
    for package in PACKAGES:
        digest.update(FileSystem.fingerprint(str(catalog.ROOT / package), exclude=list(_NOT_PACKAGED)).encode())
    digest.update(FileSystem.fingerprint(__file__).encode())
    digest.update("\n".join([PLATFORM, PYTHON_VERSION, *requirements]).encode())
    return digest.hexdigest()


def lambda_code(*, with_dependencies: bool, install: Installer = run_pip) -> lambda_.Code:
    requirements = runtime_requirements() if with_dependencies else ()
    return lambda_.Code.from_asset(
        str(catalog.ROOT),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_hash(requirements),
        bundling=BundlingOptions(
            local=LocalBundling(requirements, install),
            # Required by the API, never run: local bundling either succeeds or raises.
            image=DockerImage.from_registry("unused-local-bundling-only"),
        ),
    )
