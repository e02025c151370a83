# Two commands: `make run` (install, start the local stack) and `make test` (install, run every check).
VENV ?= .venv
PY := $(VENV)/bin/python
# Every installed package, transitively, with its hashes: `make lock` writes it from pyproject.toml.
LOCK := requirements.lock
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml $(LOCK) | cksum | cut -d' ' -f1)
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 20

.PHONY: install lock browser run test lint typecheck synth cfn-lint deploy destroy benchmark clean asl

$(STAMP): pyproject.toml $(LOCK)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --require-hashes --no-deps -r $(LOCK)
	$(PY) -m pip install -q --no-deps --no-build-isolation -e .
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# The lock from pyproject.toml's pins and extras (pip-tools in a venv of its own, pinned too).
lock:
	test -x $(VENV)-lock/bin/pip-compile || { python3 -m venv $(VENV)-lock && $(VENV)-lock/bin/pip install -q pip-tools==7.7.0; }
	$(VENV)-lock/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links \
		--no-emit-index-url --extra local --extra infra --extra dev -o $(LOCK) pyproject.toml
	# The Lambda package's own: the runtime dependencies only (infra/constructs/bundling.py installs it).
	$(VENV)-lock/bin/pip-compile -q --generate-hashes --allow-unsafe --strip-extras --no-emit-find-links \
		--no-emit-index-url -o requirements-lambda.txt pyproject.toml

# Debian's Chromium (and CJK fonts, for readable screenshots) for the browser tests.
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; }

run: install
	$(VENV)/bin/complaints run

lint: install
	$(VENV)/bin/ruff check .

typecheck: install
	$(VENV)/bin/mypy

# The import contracts (pyproject.toml [tool.importlinter], docs/architecture.md "Layers"); `make test`
# checks them too (tests/unit/test_import_contracts.py).
.PHONY: imports
imports: install
	$(VENV)/bin/lint-imports --no-cache

# The suite on every core (pytest-xdist), a test file per worker at a time: a file's module fixtures are
# built once, and every server binds a port the system gives (no two workers race for one).
XDIST := -n auto --dist loadfile

test: install browser lint typecheck
	$(VENV)/bin/pytest $(XDIST)

# One tier of the suite: tests/<tier>/, each test marked with its tier (`pytest -m "not e2e"` works too).
TIERS := unit integration workflow security infra e2e
.PHONY: $(TIERS) test-shuffled test-repeat screenshots
$(TIERS): install
	$(VENV)/bin/pytest tests/$@
e2e: browser

# The unit, integration and workflow tiers in a random order, a new one each time (its seed is printed
# at the top; SEED=<n> replays it; each worker runs its share in that order): a test that passes only after another one, or only alone, fails here.
test-shuffled: install
	$(VENV)/bin/pytest $(XDIST) -p randomly $(if $(SEED),--randomly-seed=$(SEED)) tests/unit tests/integration tests/workflow tests/security

# N runs of the whole suite on this clone (each must leave `git status` as it found it), then a
# shuffled one. A failure is a defect to fix at its cause (docs/decisions.md), never a retry.
N ?= 5
test-repeat: install browser lint typecheck
	@before="$$(git status --porcelain 2>/dev/null)"; failed=0; \
	for run in $$(seq 1 $(N)); do \
		echo "== test-repeat: run $$run of $(N)"; \
		$(VENV)/bin/pytest -q $(XDIST) || failed=$$((failed + 1)); \
		if [ "$$(git status --porcelain 2>/dev/null)" != "$$before" ]; then \
			echo "== test-repeat: run $$run changed the work tree:"; git status --short; failed=$$((failed + 1)); fi; \
	done; \
	echo "== test-repeat: $$failed failure(s) in $(N) runs"; test $$failed -eq 0
	$(MAKE) --no-print-directory test-shuffled

screenshots: install browser  # refreshes docs/screenshots (the README shows them) from the browser tests
	$(VENV)/bin/pytest tests/e2e/test_browser.py tests/e2e/test_console_browser.py --screenshots docs/screenshots

# AWS (docs/deploy.md). The CDK CLI is pinned: npm's `latest` is a 3.x that cannot read
# current cloud assemblies. Context comes from these variables, each optional except STAGE
# for deploy/destroy: make deploy STAGE=prod MAIL_DOMAINS=a.example,b.example ALARM_EMAILS=ops@a.example
CDK := npx -y aws-cdk@2.1148.1
CDK_CONTEXT = -c stage=$(or $(STAGE),dev) $(if $(BUNDLE),-c bundle=$(BUNDLE)) \
	$(if $(MAIL_DOMAINS),-c mail_domains=$(MAIL_DOMAINS)) $(if $(BRAND_ID),-c brand_id=$(BRAND_ID)) \
	$(if $(PUBLIC_BASE_URL),-c public_base_url=$(PUBLIC_BASE_URL)) $(if $(ALARM_EMAILS),-c alarm_emails=$(ALARM_EMAILS)) \
	$(if $(INVITATION_SENDER),-c invitation_sender=$(INVITATION_SENDER)) \
	$(if $(THREAT_PROTECTION),-c threat_protection=$(THREAT_PROTECTION)) \
	$(if $(LINK_SECRET_VERSION),-c link_secret_version=$(LINK_SECRET_VERSION))
# Regions whose CloudFormation has SES receipt rule sets (cfn-lint's registry data): the
# template must be valid wherever a brand can receive mail.
SES_RECEIVING_REGIONS := us-east-1 us-east-2 us-west-1 us-west-2 ca-central-1 sa-east-1 eu-west-1 eu-west-2 \
	eu-west-3 eu-central-1 eu-north-1 eu-south-1 il-central-1 af-south-1 ap-south-1 ap-southeast-1 \
	ap-southeast-2 ap-southeast-3 ap-northeast-1 ap-northeast-2 ap-northeast-3
need-stage = $(if $(STAGE),,$(error set the stage: make $@ STAGE=prod))

synth: install  # cdk.out/complaints-<stage>.template.json; the first run downloads the Lambda dependencies (BUNDLE=false: none, fully offline)
	$(CDK) synth -q $(CDK_CONTEXT)

cfn-lint: synth
	$(VENV)/bin/cfn-lint --regions $(SES_RECEIVING_REGIONS) -- cdk.out/complaints-$(or $(STAGE),dev).template.json

deploy: install  # to the account and region of the current AWS credentials; always with the dependencies
	$(need-stage)
	$(CDK) deploy $(CDK_CONTEXT) -c bundle=true --require-approval broadening $(CDK_ARGS) complaints-$(STAGE)

destroy: install  # asks before deleting; retained data (table, raw mail, keys, user pool) stays outside dev
	$(need-stage)
	$(CDK) destroy $(CDK_CONTEXT) $(CDK_ARGS) complaints-$(STAGE)

asl: install  # stepfunctions/*.asl.json and stepfunctions/README.md from the table of steps (shared/complaints/steps)
	$(PY) -m infra.asl

benchmark: install
	$(PY) -m benchmarks.lifecycles --cases 100

clean:
	rm -rf $(VENV) $(VENV)-lock cdk.out .mypy_cache .ruff_cache .pytest_cache

# Reliability (docs/reliability.md): nothing lost under load, faults and hostile input.
.PHONY: load soak fuzz
load: install  # 1,000 mails over SMTP, then 200 lifecycles in flight at once on the warp clock
	$(PY) -m benchmarks.load --mails 1000 --lifecycles 200 $(if $(JSON),--json $(JSON))

soak: install  # the same load with 5 % of the calls at every fault point failing
	$(PY) -m benchmarks.load --mails 1000 --lifecycles 200 --faults 0.05 $(if $(JSON),--json $(JSON))

fuzz: install  # hostile MIME through the parser and the intake: EXAMPLES new examples per property
	FUZZ_EXAMPLES=$(or $(EXAMPLES),5000) $(VENV)/bin/pytest -q tests/unit/test_mime_fuzz.py

.PHONY: benchmark-intake
benchmark-intake: install  # intake throughput next to its floor (docs/benchmarks.md)
	$(PY) -m benchmarks.intake --mails 200

.PHONY: benchmark-reports
benchmark-reports: install  # the monthly brand report from the KPI aggregates vs recomputed from 10,000 and 100,000 cases (docs/benchmarks.md)
	$(PY) -m benchmarks.reports --cases 100000 --dealers 200 --also 10000 --also 30000

# Classification (docs/classification.md): the labelled corpus, tuning and held-out parts.
.PHONY: classify-report benchmark-classify
classify-report: install  # confusion tables on tests/data/corpus/{tuning,heldout} (says so when a part is absent); MISSES=1 lists the misses
	$(PY) -m benchmarks.classify report $(if $(MISSES),--misses)

benchmark-classify: install  # milliseconds of CPU to classify a 20 KB mail on one core (docs/benchmarks.md)
	$(PY) -m benchmarks.classify speed --kb 20 --runs 200
