"""What the local runtime changes in moto, each with a reason and a test
(``tests/integration/test_moto_patches.py``).

1. The virtual clock: every timed wait of the ASL interpreter (task and callback
   timeouts, Wait states, retry intervals) runs on ``VirtualClock``.
2. The in-process Lambda seam: moto's Lambda backend wants Docker; we run the
   function's handler (its ``Handler`` is the import path from the catalog) in this
   process and return the real Lambda error shape, so Retry/Catch see domain errors.
3. moto defects: ``SendTaskSuccess`` on a token whose wait already timed out is
   silently accepted (AWS answers ``TaskTimedOut``), and where moto does detect it,
   it raises ``TaskTimedOut()`` without its required message (a TypeError, an HTTP
   500). We mark the endpoint and raise the error with its message.
4. moto defect: ``TMP_THREADS`` keeps every worker thread forever; ``prune_threads``.
5. moto defect: its DynamoDB backend has no lock. Under concurrent requests an atomic
   ``ADD`` loses updates (two intakes got the same case number) and a Query or a
   transaction fails with "dictionary changed size during iteration". DynamoDB requests
   enter moto one at a time (``install_dynamodb_lock``), as atomic as DynamoDB itself.
6. moto's Query on a table walks and sorts every item of the table (DynamoDB reads one
   partition): its cost grew with the table until it was most of a lifecycle's CPU
   (docs/benchmarks.md). ``install_partition_query`` hands it the queried partition only.
7. moto parses the ASL (antlr) at every StartExecution, ~0.4 s of CPU for the lifecycle,
   and builds a boto3 client for every Lambda task: ``install_program_cache`` parses a
   definition once (the parsed program keeps no execution's state: that is in each
   execution's environment), ``install_task_client_cache`` keeps one Lambda client.
"""

from __future__ import annotations

import importlib
import json
import threading
import time
import traceback
import uuid
from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from .clock import TrackedThread, VirtualClock, VirtualEvent

_installed: dict[str, Any] = {}


class _ThreadingShim:
    """``threading`` as a module attribute, with ``Event`` on the virtual clock."""

    Event = VirtualEvent
    Thread = TrackedThread

    def __getattr__(self, name: str) -> Any:
        return getattr(threading, name)


def install_clock(clock: VirtualClock) -> None:
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    from moto.stepfunctions.parser.asl.component.program import program
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.component.state.exec.state_parallel import branch_worker
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
    from moto.stepfunctions.parser.asl.component.state.wait.wait_function import wait_function
    from moto.stepfunctions.parser.asl.eval import environment
    from moto.stepfunctions.parser.asl.eval.callback import callback
    from moto.stepfunctions.parser.backend import execution_worker

    VirtualEvent.clock = clock
    TrackedThread.clock = clock
    shim = _ThreadingShim()
    for module in (execute_state, environment, program, branch_worker, state_task_service_callback):
        setattr(module, "threading", shim)  # noqa: B010 - replacing a module global
    setattr(execute_state, "Thread", TrackedThread)  # noqa: B010
    setattr(execution_worker, "Thread", TrackedThread)  # noqa: B010
    setattr(callback, "Event", VirtualEvent)  # noqa: B010
    virtual_time = SimpleNamespace(time=lambda: clock.now().timestamp(), sleep=clock.sleep)
    setattr(wait_function, "time", virtual_time)  # noqa: B010
    setattr(retrier_decl, "time", virtual_time)  # noqa: B010
    _patch_callback_timeout(callback)


def _patch_callback_timeout(callback: Any) -> None:
    if "callback_wait" in _installed:
        return
    original = callback.CallbackEndpoint.wait

    def wait(self: Any, timeout: float | None = None) -> Any:
        outcome = original(self, timeout)
        if outcome is None and self.consumer_error is None:
            # The consumer gave up (timeout): a late SendTaskSuccess must fail as in AWS.
            self.consumer_error = callback.CallbackConsumerTimeout()
        return outcome

    callback.CallbackEndpoint.wait = wait
    _installed["callback_wait"] = original

    from moto.core.exceptions import AWSError
    from moto.stepfunctions.parser import api, models

    class TaskTimedOut(AWSError):
        TYPE = "TaskTimedOut"
        STATUS = 400

    class TaskDoesNotExist(AWSError):
        TYPE = "TaskDoesNotExist"
        STATUS = 400

    class InvalidToken(AWSError):
        TYPE = "InvalidToken"
        STATUS = 400

    def send_task_success(self: Any, task_token: str, outcome: str) -> None:
        result = callback.CallbackOutcomeSuccess(callback_id=task_token, output=outcome)
        for execution in self._get_executions(api.ExecutionStatus.RUNNING):
            try:
                if execution.exec_worker.env.callback_pool_manager.notify(callback_id=task_token, outcome=result):
                    return
            except callback.CallbackNotifyConsumerError as exc:
                if isinstance(exc.callback_consumer_error, callback.CallbackConsumerTimeout):
                    raise TaskTimedOut("Task Timed Out: the task's timeout elapsed") from exc
                raise TaskDoesNotExist("Task does not exist anymore") from exc
        raise InvalidToken("Invalid Token: 'Invalid token'")

    setattr(models.StepFunctionsParserBackend, "send_task_success", send_task_success)  # noqa: B010


class LocalLambdaContext:
    """Enough of the Lambda context for powertools."""

    def __init__(self, function_name: str, memory_mb: int, timeout_s: int, region: str) -> None:
        self.function_name = function_name
        self.function_version = "$LATEST"
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = f"arn:aws:lambda:{region}:123456789012:function:{function_name}"
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))


def _resolve(handler: str) -> Callable[[Any, Any], Any]:
    module_name, _, attr = handler.rpartition(".")
    fn: Callable[[Any, Any], Any] = getattr(importlib.import_module(module_name), attr)
    return fn


def install_lambda_seam(clock: VirtualClock, on_invoke: Callable[[str, bool, float], None] | None = None) -> None:
    from moto.awslambda.models import LambdaFunction

    def invoke(self: Any, event: Any = None) -> tuple[str, bool, str]:
        payload = json.loads(event) if isinstance(event, str | bytes) else (event or {})
        started = time.perf_counter()
        errored = False
        with clock.busy():
            try:
                context = LocalLambdaContext(self.function_name, int(self.memory_size or 128),
                                             int(self.timeout or 30), self.region)
                result = _resolve(self.handler)(payload, context)
                body = json.dumps(result, default=str)
            except Exception as exc:  # noqa: BLE001 - the real Lambda error shape: Retry/Catch match errorType
                errored = True
                body = json.dumps({"errorType": type(exc).__name__, "errorMessage": str(exc),
                                   "stackTrace": traceback.format_tb(exc.__traceback__)[-25:]})
        if on_invoke is not None:
            on_invoke(self.function_name, errored, time.perf_counter() - started)
        return body, errored, ""

    if "lambda" not in _installed:
        _installed["lambda"] = LambdaFunction._invoke_lambda
    LambdaFunction._invoke_lambda = invoke  # type: ignore[method-assign]


def install_dynamodb_lock() -> None:
    from moto.dynamodb.responses import DynamoHandler

    if "dynamodb_lock" in _installed:
        return
    original = DynamoHandler.call_action
    lock = threading.RLock()

    def call_action(handler: Any) -> Any:
        with lock:
            return original(handler)

    setattr(DynamoHandler, "call_action", call_action)  # noqa: B010
    _installed["dynamodb_lock"] = original


def install_partition_query() -> None:
    from moto.dynamodb.models.table import Table

    if "partition_query" in _installed:
        return
    original_query, original_all_items = Table.query, Table.all_items
    local = threading.local()  # the partition of the Query running in this thread

    def all_items(self: Any) -> Any:
        if getattr(local, "table", None) is self:
            return local.items
        return original_all_items(self)

    def query(self: Any, hash_key: Any, range_comparison: Any, range_objs: Any, limit: Any,
              exclusive_start_key: Any, scan_index_forward: Any, projection_expressions: Any,
              index_name: str | None = None, *args: Any, **kwargs: Any) -> Any:
        if index_name is not None or hash_key is None or not self.range_key_attr:
            return original_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                                  scan_index_forward, projection_expressions, index_name, *args, **kwargs)
        local.table, local.items = self, list(self.items.get(hash_key, {}).values())
        try:
            return original_query(self, hash_key, range_comparison, range_objs, limit, exclusive_start_key,
                                  scan_index_forward, projection_expressions, index_name, *args, **kwargs)
        finally:
            local.table = local.items = None

    setattr(Table, "all_items", all_items)  # noqa: B010
    setattr(Table, "query", query)  # noqa: B010
    _installed["partition_query"] = (original_query, original_all_items)


def install_program_cache() -> None:
    from moto.stepfunctions.parser.asl.component.component import Component
    from moto.stepfunctions.parser.asl.component.eval_component import EvalComponent
    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    if "program_cache" in _installed:
        return
    programs: dict[str, Any] = {}
    lock = threading.Lock()

    def entrypoint(self: Any) -> Any:
        definition = self._evaluation_details.state_machine_details.definition
        with lock:  # executions started together wait for the one parse
            if definition not in programs:
                program = AmazonStateLanguageParser.parse(definition)[0]
                _fix_heap_keys(program, Component, EvalComponent)
                programs[definition] = program
            return programs[definition]

    _installed["program_cache"] = ExecutionWorker._get_evaluation_entrypoint
    setattr(ExecutionWorker, "_get_evaluation_entrypoint", entrypoint)  # noqa: B010


def _fix_heap_keys(root: Any, component: Any, evaluated: Any) -> None:
    """A component names its per-execution values (retry attempts) by a key made on first
    use; made now, before executions share the program, no two threads can make it twice."""
    seen: set[int] = set()
    todo = [root]
    while todo:
        node: Any = todo.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, evaluated):
            node.heap_key  # noqa: B018 - the property makes the key
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list | tuple) else (
            vars(node).values() if hasattr(node, "__dict__") else ())
        todo.extend(c for c in children if isinstance(c, component | list | tuple | dict))


def install_task_client_cache() -> None:
    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils

    if "task_client" in _installed:
        return
    original = lambda_eval_utils.boto_client_for
    clients: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        with lock:  # boto3 clients are thread-safe once made; making one is not
            if (region, service) not in clients:
                clients[(region, service)] = original(region=region, service=service,
                                                      state_credentials=state_credentials)
            return clients[(region, service)]

    _installed["task_client"] = original
    setattr(lambda_eval_utils, "boto_client_for", boto_client_for)  # noqa: B010


def prune_threads() -> int:
    """Drop finished threads from moto's global list; returns how many remain."""
    from moto.stepfunctions.parser import utils

    utils.TMP_THREADS[:] = [t for t in utils.TMP_THREADS if t.is_alive()]
    return len(utils.TMP_THREADS)
