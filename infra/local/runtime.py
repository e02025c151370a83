"""The embedded AWS: moto with its ASL interpreter, the catalog's Lambdas in-process,
the demo tenant seeded. Resources come from the same catalog, ASL file and pynamodb
model that the CDK stack uses (moto's CloudFormation cannot build that stack)."""

from __future__ import annotations

import email.parser
import email.policy
import io
import json
import os
import secrets
import threading
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from infra import catalog

from .clock import Mode, VirtualClock
from .outbox import Outbox
from .persistence import DataDir

ACCOUNT = "123456789012"  # the account moto's interpreter uses for Lambda calls
STACK = "complaints-local"
DEMO_TENANT = Path(__file__).with_name("demo-brand.json")


@dataclass
class LocalConfig:
    clock: Mode = "real"
    start: datetime | None = None
    region: str = "ap-northeast-1"
    public_base_url: str = "http://127.0.0.1:8080"
    tenant_file: Path = DEMO_TENANT
    # Where the stack keeps its data between runs (persistence.py); None: in memory only, as tests run.
    data_dir: Path | None = None


@dataclass
class Invocations:
    """Counts for benchmarks: Lambda invocations by function, errors."""

    calls: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, function: str, errored: bool, seconds: float) -> None:
        with self.lock:
            self.calls[function] += 1
            self.seconds += seconds
            if errored:
                self.errors[function] += 1


def _environment(config: LocalConfig, data: DataDir | None) -> None:
    """Settings for everything in this process (in-process Lambdas share one environment)."""
    defaults = {
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": config.region, "AWS_REGION": config.region,
        "POWERTOOLS_TRACE_DISABLED": "true", "POWERTOOLS_METRICS_DISABLED": "true",
        "POWERTOOLS_LOG_LEVEL": os.environ.get("POWERTOOLS_LOG_LEVEL", "WARNING"),
        "POWERTOOLS_SERVICE_NAME": "complaints",
    }
    for key, value in defaults.items():
        os.environ.setdefault(key, value)
    os.environ.update({
        "COMPLAINTS_REGION": config.region,
        "COMPLAINTS_TABLE_NAME": f"{STACK}-cases",
        "COMPLAINTS_RAW_BUCKET": f"{STACK}-raw-mail",
        "COMPLAINTS_STATE_MACHINE_ARN": state_machine_arn(config.region),
        "COMPLAINTS_PUBLIC_BASE_URL": config.public_base_url,
    })
    # Kept with the data: a page rendered before a restart still posts after it.
    os.environ.setdefault("COMPLAINTS_LINK_SECRET", data.secret("link") if data else secrets.token_hex(32))
    for key in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        os.environ.pop(key, None)


def state_machine_arn(region: str) -> str:
    return f"arn:aws:states:{region}:{ACCOUNT}:stateMachine:{STACK}-complaint_lifecycle"


def function_name(spec: catalog.FunctionSpec) -> str:
    return f"{STACK}-{spec.name}"


def _placeholder_zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("README.txt", "The local runtime runs this function's handler in-process.")
    return buf.getvalue()


class LocalRuntime:
    def __init__(self, config: LocalConfig | None = None) -> None:
        self.config = config or LocalConfig()
        self.data = DataDir(self.config.data_dir).create() if self.config.data_dir else None
        self.clock = VirtualClock(self.config.clock, self.config.start)
        self.outbox = Outbox(self.data.outbox_file if self.data else None)
        self.invocations = Invocations()
        self._mock: Any = None
        self.region = self.config.region
        self._clients: dict[str, Any] = {}
        self._clients_lock = threading.Lock()
        self._saved_stamp: tuple[object, ...] | None = None
        self.restarted: list[str] = []  # executions started again for open cases (a restart)

    # ----- lifecycle ------------------------------------------------------------------------
    def start(self) -> LocalRuntime:
        if self.data:
            self.data.claim()
        _environment(self.config, self.data)
        from moto import mock_aws

        from shared.runtime.settings import settings

        settings.cache_clear()
        self._mock = mock_aws(config={"stepfunctions": {"execute_state_machine": True},
                                      "lambda": {"use_docker": True}})
        self._mock.start()
        from shared.runtime.observability import logger, metrics

        from . import faults, moto_patches, output

        output.install(logger, metrics)  # the functions share this process's stdout: whole lines only
        moto_patches.install_clock(self.clock)
        moto_patches.install_lambda_seam(self.clock, self.invocations.record)
        moto_patches.install_dynamodb_lock()
        moto_patches.install_partition_query()
        moto_patches.install_program_cache()
        moto_patches.install_task_client_cache()
        faults.install()  # after the Lambda seam, which it wraps; no plan is active until one is activated
        self._create_resources()
        from shared.runtime import wiring

        wiring.reset(clock=self.clock, mailer=faults.FaultingMailer(self.outbox))
        case_numbers = self._restore() if self.data else []
        self.seed_tenant(self.config.tenant_file)
        if case_numbers:
            self._restart_cases(case_numbers)
        return self

    def stop(self) -> None:
        if self.data and self._mock is not None:
            self.clock.settle(10)  # what is under way finishes: every execution stands in a wait
            self.save()
            self.data.release()
        self.clock.stop()
        if self._mock is not None:
            self._mock.stop()
            self._mock = None

    # ----- what survives a restart (persistence.py) -----------------------------------------------
    def _restore(self) -> list[str]:
        """The saved table, objects and clock back in place; returns the saved cases' numbers."""
        from shared.runtime.settings import settings

        assert self.data is not None
        self.data.load_clock(self.clock)
        items = self.data.load_table(self._client("dynamodb"), settings().table_name)
        self.data.load_objects(self._client("s3"), self.region)
        self._saved_stamp = self._stamp()
        cases = [i["pk"]["S"].removeprefix("CASE#") for i in items
                 if i["sk"]["S"] == "#CASE" and i["pk"]["S"].startswith("CASE#")]
        self.data.restored_cases = len(cases)
        return cases

    def _restart_cases(self, case_numbers: list[str]) -> None:
        """Executions live in memory only: every case that was under way gets a new one at the
        point it stood (``Lifecycle.restart``); a failure parks that case, never the start."""
        from shared.runtime.wiring import services

        lifecycle = services().lifecycle
        with self.clock.busy():
            for case_no in case_numbers:
                try:
                    execution = lifecycle.restart(case_no)
                except Exception as exc:  # noqa: BLE001 - one case's trouble is that case's (needs_attention)
                    print(f"{case_no}: not restarted ({type(exc).__name__})", flush=True)
                    continue
                if execution:
                    self.restarted.append(execution)

    def _stamp(self) -> tuple[object, ...]:
        """Changes since the last save: every change passes through a handler or the clock."""
        with self.invocations.lock:
            calls = sum(self.invocations.calls.values())
        return calls, len(self.outbox.all()), self.clock.offset, self.clock.now() if self.clock.mode != "real" else 0

    def save(self, *, only_if_changed: bool = False) -> bool:
        """Write the table, the objects and the clock to the data folder (the outbox writes
        itself as mail goes out). A save while work runs is a fair copy, not a transaction:
        a clean stop settles first."""
        from shared.runtime.settings import settings

        if self.data is None:
            return False
        stamp = self._stamp()
        if only_if_changed and stamp == self._saved_stamp:
            return False
        self.data.save_table(self._client("dynamodb"), settings().table_name)
        self.data.save_objects(self._client("s3"))
        self.data.save_clock(self.clock)
        self._saved_stamp = stamp
        return True

    def _client(self, service: str) -> Any:
        """One client per service: a client serves any thread; making one costs ~5 ms of CPU."""
        import boto3

        with self._clients_lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(service, region_name=self.region)
            return self._clients[service]

    def _create_resources(self) -> None:
        from shared.adapters.table import Item
        from shared.runtime import wiring
        from shared.runtime.settings import settings

        s = settings()
        wiring.bind_table()  # the model on this stack's table, as every store the handlers make
        if not Item.exists():
            Item.create_table(wait=True)
        self._client("s3").create_bucket(Bucket=s.raw_bucket, CreateBucketConfiguration={"LocationConstraint": self.region})
        iam = self._client("iam")
        role = iam.create_role(RoleName=f"{STACK}-lambda", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
        lam = self._client("lambda")
        arns: dict[str, str] = {}
        code = _placeholder_zip()
        for spec in catalog.FUNCTIONS:
            arns[spec.name] = lam.create_function(
                FunctionName=function_name(spec), Runtime="python3.11", Role=role, Handler=spec.handler,
                Code={"ZipFile": code}, Timeout=spec.timeout_s, MemorySize=spec.memory_mb,
                Description=spec.description)["FunctionArn"]
        sfn_role = iam.create_role(RoleName=f"{STACK}-states", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                    "Principal": {"Service": "states.amazonaws.com"}}]}))["Role"]["Arn"]
        sfn = self._client("stepfunctions")
        for name, path in catalog.STATE_MACHINES.items():
            sfn.create_state_machine(name=f"{STACK}-{name}", roleArn=sfn_role, type="STANDARD",
                                     definition=render_asl(path.read_text("utf-8"), catalog.substitutions(arns)))

    def seed_tenant(self, path: Path) -> None:
        from shared.complaints.tenant import Vehicle
        from shared.runtime import wiring

        doc = json.loads(path.read_text("utf-8"))
        vehicles = [Vehicle.model_validate(v) for v in doc.pop("vehicles", [])]
        doc.pop("about", None)
        wiring.case_store().put_tenant(doc, vehicles)

    # ----- mail in ---------------------------------------------------------------------------
    def deliver(self, raw: bytes, recipients: list[str], envelope_from: str | None = None,
                verdicts: dict[str, str] | None = None, ses_message_id: str | None = None,
                dkim_domain: str | None = None) -> dict[str, Any]:
        """What SES does: keep the raw mail in S3, then invoke the intake function. When the
        caller plays SPF/DKIM/DMARC verdicts or a DKIM signing domain, the mail gets the
        Authentication-Results header SES writes on top of it (otherwise it is kept as sent)."""
        from shared.runtime.settings import settings

        s = settings()
        message_id = ses_message_id or uuid.uuid4().hex
        if dkim_domain or any(k in (verdicts or {}) for k in ("spf", "dkim", "dmarc")):
            raw = authentication_results(raw, envelope_from, verdicts or {}, dkim_domain) + raw
        with self.clock.busy():
            self._client("s3").put_object(Bucket=s.raw_bucket, Key=f"{s.raw_prefix}{message_id}", Body=raw)
            event = ses_event(message_id, recipients, envelope_from, verdicts or {}, self.clock.now(), self.region)
            return self.invoke("intake_email", event)

    def invoke(self, function: str, event: dict[str, Any]) -> Any:
        spec = catalog.function(function)
        response = self._client("lambda").invoke(FunctionName=function_name(spec), Payload=json.dumps(event))
        payload = json.loads(response["Payload"].read() or b"null")
        if response.get("FunctionError"):
            raise LocalInvocationError(payload)
        return payload

    # ----- observation -----------------------------------------------------------------------
    def execution(self, case_no: str) -> dict[str, Any]:
        """The execution named ``case_no`` (a case's first; a later one by its own name)."""
        arn = state_machine_arn(self.region).replace(":stateMachine:", ":execution:") + f":{case_no}"
        result: dict[str, Any] = self._client("stepfunctions").describe_execution(executionArn=arn)
        return result

    def history(self, case_no: str) -> list[dict[str, Any]]:
        arn = state_machine_arn(self.region).replace(":stateMachine:", ":execution:") + f":{case_no}"
        sfn = self._client("stepfunctions")
        events: list[dict[str, Any]] = []
        token = None
        while True:
            kwargs = {"executionArn": arn, "maxResults": 1000, **({"nextToken": token} if token else {})}
            page = sfn.get_execution_history(**kwargs)
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events


class LocalInvocationError(Exception):
    def __init__(self, payload: Any) -> None:
        super().__init__(json.dumps(payload)[:500])
        self.payload = payload


def render_asl(text: str, substitutions: dict[str, str]) -> str:
    """``DefinitionBody.from_file`` + ``definition_substitutions``, done locally."""
    for key, value in substitutions.items():
        text = text.replace("${" + key + "}", value)
    return text


def authentication_results(raw: bytes, envelope_from: str | None, verdicts: dict[str, str],
                           dkim_domain: str | None) -> bytes:
    """The header SES puts on top of a received mail, in SES's format: the DKIM clause names
    the signing domain (``dkim_domain``, else the From domain), which the receipt event lacks."""
    header = email.parser.BytesHeaderParser(policy=email.policy.default).parsebytes(raw)
    try:
        from_domain = (header.get("from") or "").addresses[0].domain.lower()  # type: ignore[union-attr]
    except (AttributeError, IndexError, TypeError, ValueError):
        from_domain = ""
    mail_from = (envelope_from or "").rpartition("@")[2].lower()

    def verdict(name: str) -> str:
        return verdicts.get(name, "PASS").lower()

    clauses = [f"spf={verdict('spf')} smtp.mailfrom={mail_from or 'unknown'}"]
    if verdict("dkim") != "none":
        clauses.append(f"dkim={verdict('dkim')} header.i=@{dkim_domain or from_domain or 'unknown'}")
    clauses.append(f"dmarc={verdict('dmarc')} header.from={from_domain or 'unknown'}")
    return ("Authentication-Results: amazonses.com;\r\n " + ";\r\n ".join(clauses) + ";\r\n").encode()


def ses_event(message_id: str, recipients: list[str], source: str | None, verdicts: dict[str, str],
              at: datetime, region: str) -> dict[str, Any]:
    """An SES receipt event as SES sends it to Lambda after the S3 action (no body)."""
    stamp = at.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def verdict(name: str) -> dict[str, str]:
        return {"status": verdicts.get(name, "PASS").upper()}

    return {"Records": [{"eventSource": "aws:ses", "eventVersion": "1.0", "ses": {
        "mail": {"timestamp": stamp, "source": source or "", "messageId": message_id, "destination": recipients,
                 "headersTruncated": False, "headers": [], "commonHeaders": {"returnPath": source or "",
                                                                             "from": [source or ""], "to": recipients,
                                                                             "messageId": message_id, "subject": ""}},
        "receipt": {"timestamp": stamp, "processingTimeMillis": 1, "recipients": recipients,
                    "spamVerdict": verdict("spam"), "virusVerdict": verdict("virus"), "spfVerdict": verdict("spf"),
                    "dkimVerdict": verdict("dkim"), "dmarcVerdict": verdict("dmarc"),
                    "action": {"type": "Lambda", "invocationType": "Event",
                               "functionArn": f"arn:aws:lambda:{region}:{ACCOUNT}:function:{STACK}-intake_email"}}}}]}
