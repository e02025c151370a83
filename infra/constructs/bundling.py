"""The Lambda package, built on this machine without Docker.

One asset serves every function: our two packages (``functions/``, ``shared/``) plus the
runtime dependencies, every one of them, transitively, as ``requirements-lambda.txt`` locks
them with their hashes (``make lock`` writes it from ``pyproject.toml``'s pins), installed by
pip as Linux wheels for the Lambda runtime (``--platform manylinux2014_x86_64
--only-binary=:all: --require-hashes --no-deps``), whatever the machine that synthesises. With ``with_dependencies=False`` (tests, offline checks)
pip is not run and the package holds our code only: such a package deploys, but its
functions cannot import their dependencies, so ``make deploy`` always bundles.
"""

from __future__ import annotations

import compileall
import hashlib
import py_compile
import re
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


LAMBDA_LOCK = catalog.ROOT / "requirements-lambda.txt"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", re.M)


def runtime_requirements(pyproject: Path = catalog.ROOT / "pyproject.toml") -> tuple[str, ...]:
    """``[project].dependencies``: every one pinned (``name==version``), or the package drifts."""
    requirements = tuple(tomllib.loads(pyproject.read_text("utf-8"))["project"]["dependencies"])
    unpinned = [r for r in requirements if "==" not in r]
    if unpinned:
        raise ValueError(f"runtime dependencies must be pinned with '==': {unpinned}")
    return requirements


def _name(requirement: str) -> str:
    return re.sub(r"[-_.]+", "-", requirement.split("[", 1)[0].split("==", 1)[0]).lower()


def locked(lock: Path = LAMBDA_LOCK) -> dict[str, str]:
    """The lock's pins, name (normalised) to version."""
    return {_name(name): version for name, version in _PIN.findall(lock.read_text("utf-8"))}


def check_lock(pyproject: Path = catalog.ROOT / "pyproject.toml", lock: Path = LAMBDA_LOCK) -> dict[str, str]:
    """The lock holds each of pyproject's pins at its version, or it is stale (``make lock``)."""
    pins = locked(lock)
    stale = [r for r in runtime_requirements(pyproject) if pins.get(_name(r)) != r.split("==", 1)[1]]
    if stale:
        raise ValueError(f"{lock.name} does not hold {stale}: run make lock")
    return pins


def pip_command(target: Path, lock: Path) -> list[str]:
    """Linux wheels for the runtime's interpreter, never an sdist built for this machine; exactly
    the lock's list, each file checked against its hash."""
    return [
        sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", "--no-compile",
        "--platform", PLATFORM, "--implementation", "cp", "--python-version", PYTHON_VERSION,
        "--only-binary=:all:", "--require-hashes", "--no-deps", "--target", str(target), "-r", str(lock),
    ]


def run_pip(command: Sequence[str]) -> None:
    # The command is built above from the lock; no shell is involved.
    subprocess.run(list(command), check=True)  # noqa: S603


@jsii.implements(ILocalBundling)
class LocalBundling:
    """CDK's local bundling hook: CDK calls ``try_bundle`` with the asset's output directory."""

    def __init__(self, lock: Path | None, install: Installer = run_pip) -> None:
        self._lock = lock
        self._install = install

    def try_bundle(self, output_dir: str, *_args: Any, **_options: Any) -> bool:
        out = Path(output_dir)
        if self._lock is not None:
            self._install(pip_command(out, self._lock))
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


def asset_hash(lock: Path | None) -> str:
    """What the package is made of: our sources, the lock (every pin and hash), the target, this bundler."""
    digest = hashlib.sha256()
    for package in PACKAGES:
        digest.update(FileSystem.fingerprint(str(catalog.ROOT / package), exclude=list(_NOT_PACKAGED)).encode())
    digest.update(FileSystem.fingerprint(__file__).encode())
    digest.update("\n".join([PLATFORM, PYTHON_VERSION]).encode())
    if lock is not None:
        digest.update(lock.read_bytes())
    return digest.hexdigest()


def lambda_code(*, with_dependencies: bool, install: Installer = run_pip, lock: Path = LAMBDA_LOCK) -> lambda_.Code:
    if with_dependencies:
        check_lock(lock=lock)
    chosen = lock if with_dependencies else None
    return lambda_.Code.from_asset(
        str(catalog.ROOT),
        asset_hash_type=AssetHashType.CUSTOM,
        asset_hash=asset_hash(chosen),
        bundling=BundlingOptions(
            local=LocalBundling(chosen, install),
            # Required by the API, never run: local bundling either succeeds or raises.
            image=DockerImage.from_registry("unused-local-bundling-only"),
        ),
    )
