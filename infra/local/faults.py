"""Fault injection for the local runtime: AWS failing the way AWS fails, on purpose.

A ``FaultPlan`` is a list of ``FaultRule``s, each naming a service, optionally an API
operation and a function of the catalog, a kind of fault, and how often: a ``rate``
(each matching call fails with that probability) or a ``count`` (the next N matching calls
fail). Decisions are deterministic for a seed: every (rule, service, operation, function)
draws from a random stream of its own, so that the same calls see the same faults
whatever else runs at the same time.

Where faults enter, so that the code under test handles exactly what it would on AWS:

- AWS API calls (DynamoDB through pynamodb, S3, Step Functions, Lambda's Invoke):
  moto answers every botocore request through one hook on ``before-send``; a fault is
  answered there instead, as an HTTP error response in the service's own wire format
  with the real error code (``ProvisionedThroughputExceededException``,
  ``ConditionalCheckFailedException``, ``SlowDown``, ``TooManyRequestsException``...).
  botocore parses it, retries it or not by its configured retry mode, and raises the
  ``ClientError`` the application sees on AWS. Calls to services other than Lambda fail
  only while a function of the catalog runs (``running_function``): the benchmark's and
  the tests' own calls, and SES's S3 action, are not the system under test.
- Lambda timeouts: the in-process Lambda seam runs the handler, then answers as Lambda
  does when a function runs out of time (``Sandbox.Timedout``): the work is done, the
  answer is lost, the strictest case for a retry.
- botocore's retry waits pass ``SDK_BACKOFF_SPEEDUP`` times faster (the count and order
  of retries are botocore's own): a soak measures what is lost, not how long SDKs wait.
- SES: locally the outbox stands in for SES (``FaultingMailer``); a fault makes the send
  raise what ``SesMailer`` raises when SES refuses (``MailDeliveryError`` with the code).

Kinds per service: ``throttle``, ``error`` (5xx), ``conflict`` (DynamoDB: a concurrent
writer won an optimistic lock, so only writes conditioned on ``version``), ``rejected``
(SES ``MessageRejected``), ``timeout`` (Lambda). Switch a plan on and off at run time
with ``activate``/``deactivate`` or ``POST /_local/faults``.
"""

from __future__ import annotations

import contextvars
import json
import random
import threading
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from types import SimpleNamespace
from typing import Any
from urllib.parse import unquote, urlsplit

from shared.complaints.errors import MailDeliveryError
from shared.complaints.ports import Mailer, OutgoingMail

STACK_PREFIX = "complaints-local-"
# botocore's retry waits (exponential backoff with jitter, up to seconds) pass this many
# times faster locally: as many retries, in the same order, on a laptop's time scale.
SDK_BACKOFF_SPEEDUP = 20.0
TIMED_OUT = "Sandbox.Timedout"  # Lambda's errorType for a function that ran out of time

# (service, kind) -> (HTTP status, error code, message), as each service answers.
ERRORS: dict[tuple[str, str], tuple[int, str, str]] = {
    ("dynamodb", "throttle"): (400, "ProvisionedThroughputExceededException",
                               "The level of configured provisioned throughput for the table was exceeded."),
    ("dynamodb", "error"): (500, "InternalServerError", "Internal server error"),
    ("dynamodb", "conflict"): (400, "ConditionalCheckFailedException", "The conditional request failed"),
    ("s3", "error"): (500, "InternalError", "We encountered an internal error. Please try again."),
    ("s3", "throttle"): (503, "SlowDown", "Please reduce your request rate."),
    ("ses", "throttle"): (400, "Throttling", "Maximum sending rate exceeded."),
    ("ses", "rejected"): (400, "MessageRejected", "Email address is not verified."),
    ("ses", "error"): (503, "ServiceUnavailable", "Service is unavailable. Please try again later."),
    ("sfn", "throttle"): (400, "ThrottlingException", "Rate exceeded"),
    ("sfn", "error"): (503, "ServiceUnavailable", "Service is unavailable"),
    ("lambda", "throttle"): (429, "TooManyRequestsException", "Rate Exceeded."),
    ("lambda", "error"): (500, "ServiceException", "An internal error occurred in the Lambda service."),
    ("lambda", "timeout"): (200, TIMED_OUT, "Task timed out"),
}
SERVICES = frozenset(s for s, _ in ERRORS)

running_function: contextvars.ContextVar[str | None] = contextvars.ContextVar("running_function", default=None)


@dataclass(frozen=True)
class FaultRule:
    service: str  # dynamodb | s3 | ses | sfn | lambda
    kind: str  # throttle | error | conflict | rejected | timeout (see ERRORS)
    operation: str | None = None  # the API operation (PutItem, GetObject, Invoke, SendRawEmail...); None: any
    function: str | None = None  # the catalog function running (for lambda: invoked); None: any
    rate: float = 0.0  # probability that a matching call fails
    count: int | None = None  # instead of a rate: the next ``count`` matching calls fail

    def __post_init__(self) -> None:
        if (self.service, self.kind) not in ERRORS:
            raise ValueError(f"no fault {self.kind!r} for {self.service!r}: one of {sorted(ERRORS)}")
        if self.count is None and not 0.0 <= self.rate <= 1.0:
            raise ValueError("rate is a probability")


@dataclass(frozen=True)
class Fault:
    service: str
    operation: str
    kind: str
    function: str | None
    status: int
    code: str
    message: str


@dataclass
class FaultPlan:
    rules: list[FaultRule]
    seed: int = 0
    injected: Counter[tuple[str, str, str, str]] = field(default_factory=Counter)  # (service, op, kind, function)
    calls: Counter[tuple[str, str]] = field(default_factory=Counter)  # calls some rule matched, by (service, op)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _streams: dict[tuple[Any, ...], random.Random] = field(default_factory=dict, repr=False)
    _spent: Counter[int] = field(default_factory=Counter, repr=False)

    def decide(self, service: str, operation: str, function: str | None, *, stage: str = "send",
               request: dict[str, Any] | None = None) -> Fault | None:
        """The fault this call gets, if any. ``stage`` is where the call is: ``send`` (the
        API request) or ``seam`` (inside the Lambda, where only timeouts happen)."""
        counted = False
        for index, rule in enumerate(self.rules):
            if not self._matches(rule, service, operation, function, stage, request):
                continue
            with self._lock:
                if not counted:  # a call that several rules match is one call (and a seam's run is not its Invoke)
                    self.calls[(service, operation if stage == "send" else f"{operation}@{stage}")] += 1
                    counted = True
                if rule.count is not None:
                    hit = self._spent[index] < rule.count
                    self._spent[index] += hit
                else:
                    key = (self.seed, index, service, operation, function)
                    stream = self._streams.setdefault(key, random.Random(repr(key)))
                    hit = stream.random() < rule.rate
                if hit:
                    self.injected[(service, operation, rule.kind, function or "-")] += 1
            if hit:
                status, code, message = ERRORS[(service, rule.kind)]
                return Fault(service, operation, rule.kind, function, status, code, message)
        return None

    @staticmethod
    def _matches(rule: FaultRule, service: str, operation: str, function: str | None, stage: str,
                 request: dict[str, Any] | None) -> bool:
        if rule.service != service or (rule.operation and rule.operation != operation):
            return False
        if (rule.kind == "timeout") != (stage == "seam"):
            return False
        if service != "lambda" and function is None:
            return False  # not the system's own call
        if rule.function and rule.function != function:
            return False
        if rule.kind == "conflict":  # only where a concurrent writer can win: an optimistic lock
            names = (request or {}).get("ExpressionAttributeNames") or {}
            return bool((request or {}).get("ConditionExpression")) and "version" in names.values()
        return True

    def total(self) -> int:
        with self._lock:
            return sum(self.injected.values())

    def summary(self) -> dict[str, Any]:
        with self._lock:
            return {"seed": self.seed, "rules": [asdict(r) for r in self.rules],
                    "injected": {" ".join(k): v for k, v in sorted(self.injected.items())},
                    "calls": {" ".join(k): v for k, v in sorted(self.calls.items())},
                    "total_injected": sum(self.injected.values())}


_active: FaultPlan | None = None
_installed: dict[str, Any] = {}


def activate(plan: FaultPlan) -> FaultPlan:
    global _active
    _active = plan
    return plan


def deactivate() -> FaultPlan | None:
    global _active
    plan, _active = _active, None
    return plan


def active() -> FaultPlan | None:
    return _active


@contextmanager
def injected(plan: FaultPlan) -> Iterator[FaultPlan]:
    previous = _active
    activate(plan)
    try:
        yield plan
    finally:
        activate(previous) if previous is not None else deactivate()


def plan_from_json(data: dict[str, Any]) -> FaultPlan:
    """``{"seed": 7, "rules": [{"service": "dynamodb", "kind": "throttle", "rate": 0.05}, ...]}``"""
    known = set(FaultRule.__dataclass_fields__)
    rules = [FaultRule(**{k: v for k, v in r.items() if k in known}) for r in data.get("rules", [])]
    return FaultPlan(rules, int(data.get("seed", 0)))


# ----- where faults enter ------------------------------------------------------------------------
def catalog_name(function_name: str) -> str:
    """``complaints-local-workflow`` or its ARN -> ``workflow``."""
    return function_name.rsplit(":function:", 1)[-1].split(":", 1)[0].removeprefix(STACK_PREFIX)


def _invoked_function(url: str) -> str | None:
    parts = unquote(urlsplit(url).path).split("/functions/", 1)
    return catalog_name(parts[1].split("/", 1)[0]) if len(parts) == 2 else None


def error_response(fault: Fault, url: str) -> tuple[int, dict[str, str], bytes]:
    """The HTTP response the service sends for this error, in its protocol."""
    request_id = str(uuid.uuid4())
    if fault.service in ("dynamodb", "sfn"):  # JSON 1.0
        prefix = "com.amazonaws.dynamodb.v20120810#" if fault.service == "dynamodb" else ""
        body = json.dumps({"__type": f"{prefix}{fault.code}", "message": fault.message})
        return fault.status, {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": request_id}, body.encode()
    if fault.service == "lambda":  # REST-JSON
        body = json.dumps({"Type": "User" if fault.status < 500 else "Service", "message": fault.message})
        return fault.status, {"Content-Type": "application/json", "x-amzn-RequestId": request_id,
                              "x-amzn-ErrorType": fault.code}, body.encode()
    if fault.service == "s3":  # REST-XML
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{fault.code}</Code>'
                f"<Message>{fault.message}</Message><RequestId>{request_id}</RequestId></Error>")
        return fault.status, {"Content-Type": "application/xml", "x-amz-request-id": request_id}, body.encode()
    body = (f'<ErrorResponse xmlns="http://ses.amazonaws.com/doc/2010-12-01/"><Error><Type>Sender</Type>'
            f"<Code>{fault.code}</Code><Message>{fault.message}</Message></Error>"
            f"<RequestId>{request_id}</RequestId></ErrorResponse>")  # Query
    return fault.status, {"Content-Type": "text/xml", "x-amzn-RequestId": request_id}, body.encode()


def _request_json(request: Any) -> dict[str, Any] | None:
    body = getattr(request, "body", None)
    if not body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def install() -> None:
    """Hook the plan into moto's request stub and the Lambda seam (idempotent; call after
    ``moto_patches.install_lambda_seam``, which replaces the seam)."""
    from botocore.awsrequest import AWSResponse
    from moto.awslambda.models import LambdaFunction
    from moto.core.botocore_stubber import BotocoreStubber, MockRawResponse

    if "stubber" not in _installed:
        original_call = BotocoreStubber.__call__

        def call(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            plan = _active
            if plan is not None and self.enabled:
                _, _, rest = event_name.partition(".")
                service, _, operation = rest.partition(".")
                if service in SERVICES:
                    function = _invoked_function(request.url) if service == "lambda" else running_function.get()
                    body = _request_json(request) if service == "dynamodb" else None
                    fault = plan.decide(service, operation, function, request=body)
                    if fault is not None:
                        status, headers, payload = error_response(fault, request.url)
                        return AWSResponse(request.url, status, headers, MockRawResponse(payload))
            return original_call(self, event_name, request, **kwargs)

        _installed["stubber"] = original_call
        BotocoreStubber.__call__ = call  # type: ignore[method-assign]

    if "backoff" not in _installed:
        import time

        from botocore import endpoint

        _installed["backoff"] = endpoint.time
        endpoint.time = SimpleNamespace(sleep=lambda seconds: time.sleep(seconds / SDK_BACKOFF_SPEEDUP))

    seam = LambdaFunction._invoke_lambda
    if getattr(seam, "_faults", False):
        return

    def invoke(self: Any, event: Any = None) -> tuple[str, bool, str]:
        name = catalog_name(self.function_name)
        token = running_function.set(name)
        try:
            body, errored, logs = seam(self, event)
        finally:
            running_function.reset(token)
        plan = _active
        fault = plan.decide("lambda", "Invoke", name, stage="seam") if plan is not None else None
        if fault is None:
            return body, errored, logs
        # Lambda stopped the function at its timeout: whatever it did stays done, its answer is lost.
        return json.dumps({"errorType": TIMED_OUT, "errorMessage": f"RequestId: {uuid.uuid4()} Error: "
                           f"Task timed out after {float(self.timeout or 3):.2f} seconds"}), True, ""

    invoke._faults = True  # type: ignore[attr-defined]
    LambdaFunction._invoke_lambda = invoke  # type: ignore[method-assign]


class FaultingMailer:
    """The local stand-in for SES (the outbox) failing as SES does: the send raises what
    ``SesMailer`` raises when SES refuses a mail after botocore's retries."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer

    def send(self, mail: OutgoingMail) -> None:
        plan = _active
        if plan is not None:
            fault = plan.decide("ses", "SendRawEmail", running_function.get())
            if fault is not None:
                raise MailDeliveryError(fault.code)
        self.mailer.send(mail)
