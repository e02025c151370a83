# Two commands: `make run` (install, start the local stack) and `make test` (install, run every check).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install browser run test lint typecheck unit synth benchmark clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[local,infra,dev]'
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# Debian's Chromium (and CJK fonts, for readable screenshots) for the browser tests.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

run: install
	$(VENV)/bin/complaints run

lint: install
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy

test: install browser lint typecheck
	$(VENV)/bin/pytest

unit: install
	$(VENV)/bin/pytest tests/unit

synth: install  # the CloudFormation template in cdk.out/, offline, with the pinned CDK CLI
	npx -y aws-cdk@2.1148.1 synth -q -c stage=$(or $(STAGE),dev)

benchmark: install
	$(PY) -m benchmarks.lifecycles --cases 100

clean:
	rm -rf $(VENV) cdk.out .mypy_cache .ruff_cache .pytest_cache
