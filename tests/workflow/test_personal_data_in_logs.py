"""Personal data never in logs in clear: a whole lifecycle (mail in, every step decided by
link, closed, surveyed) with every log the code writes captured at DEBUG, everything the
process prints (metrics included), what any library logs at INFO and above, and the Step
Functions history (which the design keeps free of personal data). None of them may hold
the customer's e-mail address, phone number, VIN or plate in clear."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from infra.local.personas import Personas, happy_path
from infra.local.runtime import LocalRuntime
from shared.runtime.observability import logger, mask
from shared.runtime.wiring import services
from tests.conftest import finished, wait_until

CUSTOMER = "wang.fang.pd@example.net"
PHONE = "13912345678"
VIN = "LAUR0A1B2C3000003"
PLATE = "粤A11223"
MAIL = (f"From: Wang Fang <{CUSTOMER}>\r\nTo: complaints@aurora-motors.example\r\nSubject: 刹车失灵，差点出事故\r\n"
        "Message-ID: <pd-test-1@example.net>\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
        "Content-Transfer-Encoding: 8bit\r\n\r\n"
        f"我的车（车架号 {VIN}，车牌 {PLATE}）高速上刹车突然失灵，差点出事故。\r\n请尽快联系我：{PHONE}，邮箱 {CUSTOMER}。\r\n")


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> Iterator[io.StringIO]:
    """Our logger at DEBUG into a buffer, and every other logger's INFO and above."""
    buffer = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    old_stream, old_level = handler.stream, logger.log_level
    handler.setStream(buffer)
    logger.setLevel("DEBUG")
    everything = logging.StreamHandler(buffer)
    everything.setLevel(logging.INFO)
    root = logging.getLogger()
    root_level = root.level
    root.addHandler(everything)
    root.setLevel(logging.INFO)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # metrics are printed as logs (EMF)
    try:
        yield buffer
    finally:
        root.removeHandler(everything)
        root.setLevel(root_level)
        handler.setStream(old_stream)
        logger.setLevel(old_level)


def identifiers() -> list[str]:
    ascii_plate = json.dumps(PLATE)[1:-1]  # as json.dumps writes it with ensure_ascii
    return [CUSTOMER, CUSTOMER.upper(), PHONE, f"{PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}", VIN, VIN.lower(), PLATE,
            ascii_plate, ascii_plate.lower()]


def test_a_whole_lifecycle_logs_no_personal_data_in_clear(warp_runtime: LocalRuntime, captured: io.StringIO,
                                                          capfd: pytest.CaptureFixture[str]) -> None:
    Personas(warp_runtime, happy_path())
    result = warp_runtime.deliver(MAIL.encode("utf-8"), ["complaints@aurora-motors.example"], envelope_from=CUSTOMER)
    no = str(result["case_no"])
    wait_until(finished(warp_runtime, no))
    assert warp_runtime.execution(no)["status"] == "SUCCEEDED"
    case = services().store.get_case(no)
    # The case itself holds them: the test is about where they must not be.
    assert case.customer.email == CUSTOMER and case.customer.phone == PHONE
    assert case.vehicle is not None and case.vehicle.vin == VIN and case.vehicle.plate == PLATE

    out = capfd.readouterr()
    logs = captured.getvalue()
    history = json.dumps(warp_runtime.history(no), default=str, ensure_ascii=False)
    sources = {"logs": logs, "stdout": out.out, "stderr": out.err, "Step Functions history": history}
    # The capture works: our structured logs of this case are there, the sender masked.
    assert no in logs and '"level":"INFO"' in logs.replace(" ", "") and mask(CUSTOMER) in logs
    assert '"NeedsAttention"' not in out.out and '"_aws"' in out.out  # metrics were printed (EMF)
    leaks = {(name, pd) for name, text in sources.items() for pd in identifiers() if pd in text}
    assert not leaks, leaks
