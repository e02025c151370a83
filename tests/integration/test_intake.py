"""The intake function on the local runtime: SES event + raw mail in S3 -> disposition,
case, acknowledgement, one execution per case. Every labelled sample: test_intake_samples.py."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from infra.local.http import recipients_of
from infra.local.runtime import LocalRuntime
from shared.runtime.settings import settings
from shared.runtime.wiring import services
from tests.conftest import sample


def deliver(runtime: LocalRuntime, name: str, **kwargs: Any) -> dict[str, Any]:
    raw = sample(name)
    return runtime.deliver(raw, kwargs.pop("recipients", None) or recipients_of(raw), **kwargs)


def raw_kept(runtime: LocalRuntime, ses_id: str) -> bytes:
    s3 = boto3.client("s3", region_name=runtime.region)
    body: bytes = s3.get_object(Bucket=settings().raw_bucket, Key=f"raw/{ses_id}")["Body"].read()
    return body


def test_redelivered_ses_event_registers_nothing_new(manual_runtime: LocalRuntime) -> None:
    first = deliver(manual_runtime, "p02_wait_time_bj002_gb2312.eml", ses_message_id="ses-same")
    again = deliver(manual_runtime, "p02_wait_time_bj002_gb2312.eml", ses_message_id="ses-same")
    assert first["disposition"] == "new_case"
    assert again == {"disposition": "duplicate", "case_no": first["case_no"]}
    assert len(services().store.list_cases("aurora", dealer="BJ002")) == 1
    assert len([m for m in manual_runtime.outbox.all() if "zhang.min@mail.example" in m.mail.to]) == 1


def test_a_reply_threads_into_its_case(manual_runtime: LocalRuntime) -> None:
    first = deliver(manual_runtime, "p27_oddly_folded_headers_en_hz005.eml")
    ack = manual_runtime.outbox.for_case(first["case_no"])[0].mail
    # A reply goes to the address our mail came from.
    reply = (f"From: Min-jun Kim <minjun.kim@corp.example>\r\nTo: {ack.sender}\r\n"
             f"Subject: Re: {ack.subject}\r\nMessage-ID: <reply-1@corp.example>\r\nIn-Reply-To: {ack.message_id}\r\n"
             f"References: {ack.message_id}\r\n\r\nThe rattle is worse now, and if nothing happens I will call my lawyer.\r\n")
    result = manual_runtime.deliver(reply.encode(), [ack.sender])
    assert result == {"disposition": "append_to_case", "case_no": first["case_no"]}
    case = services().store.get_case(first["case_no"])
    assert case.classification.severity == "critical" and case.classification.media_or_regulator
    to_staff = [m.mail for m in manual_runtime.outbox.for_case(first["case_no"]) if "客户来信" in m.mail.subject]
    assert to_staff and to_staff[0].to == ["cs.hz005@dealers.example"]
    # A reply found only by the case number in its subject threads too.
    tagged = (f"From: minjun.kim@corp.example\r\nTo: hz005@complaints.aurora-motors.example\r\n"
              f"Subject: repair order number for {first['case_no']}\r\nMessage-ID: <reply-2@corp.example>\r\n\r\nRO-77812\r\n")
    assert manual_runtime.deliver(tagged.encode(), ["hz005@complaints.aurora-motors.example"])["disposition"] == "append_to_case"


@pytest.mark.parametrize(("verdict", "disposition"), [("spam", "quarantine_spam"), ("virus", "quarantine_virus")])
def test_ses_verdicts_quarantine(manual_runtime: LocalRuntime, verdict: str, disposition: str) -> None:
    result = deliver(manual_runtime, "p01_brake_failure_sh001.eml", verdicts={verdict: "FAIL"}, ses_message_id="ses-q")
    assert result["disposition"] == disposition and result["case_no"] is None
    assert raw_kept(manual_runtime, "ses-q")
    assert manual_runtime.outbox.all() == []


def test_mail_for_no_tenant_is_held_for_the_default_brand(manual_runtime: LocalRuntime) -> None:
    result = deliver(manual_runtime, "p01_brake_failure_sh001.eml", recipients=["someone@elsewhere.example"])
    assert result["disposition"] == "quarantine_malformed" and result["case_no"] is None
    held = services().store.list_held("aurora")
    assert [(h.detail, h.recipients) for h in held] == [("no recipient belongs to a tenant",
                                                        ["someone@elsewhere.example"])]
    assert manual_runtime.outbox.all() == []  # nobody is answered
