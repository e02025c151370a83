"""A large text-body mail through the intake function on the local runtime, and the DynamoDB
requests of a small new case and of a stranger's mail naming a case (issue 16).

    python -m benchmarks.large_mail [--mb 40]

The manual clock; the function is warmed by one small mail first. Two timings of the large
mail: ``deliver`` as ``/_local/inbound`` does it (moto's S3 put included, which SES does before
the function runs), and the intake function alone on a mail already in S3 — the figure to hold
against the function's 60 s timeout. Requests are counted by ``DynamoMeter``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from benchmarks.lifecycles import DynamoMeter
from infra.local.runtime import LocalConfig, LocalRuntime, ses_event
from shared.runtime.settings import settings
from tests.conftest import MONDAY_10AM_SHANGHAI

SH001 = "sh001@complaints.aurora-motors.example"
LINE = "我的车刹车有异响，经销商一直不处理。The brakes squeal and nobody fixes them. "  # 95 bytes in UTF-8


def mail(sender: str, message_id: str, subject: str, text: str) -> bytes:
    return (f"From: <{sender}>\r\nTo: {SH001}\r\nSubject: {subject}\r\nMessage-ID: <{message_id}>\r\n"
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" + text).encode()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mb", type=int, default=40)
    args = parser.parse_args(argv)
    big = LINE * (args.mb * 1_000_000 // len(LINE.encode()))
    runtime = LocalRuntime(LocalConfig(clock="manual", start=MONDAY_10AM_SHANGHAI)).start()
    try:
        first = runtime.deliver(mail("warm@mail.example", "warm@mail.example", "刹车异响", LINE), [SH001])
        with DynamoMeter().active() as meter:
            runtime.deliver(mail("fresh@mail.example", "fresh@mail.example", "刹车异响", LINE), [SH001])
        print(f"new case: {meter.counts.write_requests} writes, {meter.counts.read_requests} reads")
        stranger = mail("stranger@evil.example", "s1@evil.example", f"Re: [{first['case_no']}] x", "刹车失灵")
        with DynamoMeter().active() as meter:
            result = runtime.deliver(stranger, [SH001], "stranger@evil.example",
                                     {"spf": "FAIL", "dkim": "FAIL", "dmarc": "FAIL"})
        print(f"stranger naming a case: {result['disposition']}, {meter.counts.write_requests} writes, "
              f"{meter.counts.read_requests} reads")
        raw = mail("long@mail.example", "long-1@mail.example", "刹车异响", big)
        started = time.monotonic()
        result = runtime.deliver(raw, [SH001])
        print(f"{len(raw) / 1e6:.1f} MB, deliver: {result['disposition']} in {time.monotonic() - started:.1f} s")
        s = settings()
        runtime._client("s3").put_object(Bucket=s.raw_bucket, Key=f"{s.raw_prefix}large-2",
                                         Body=raw.replace(b"<long-1@", b"<long-2@"))
        started = time.monotonic()
        result = runtime.invoke("intake_email", ses_event("large-2", [SH001], None, {}, runtime.clock.now(),
                                                          runtime.region))
        print(f"{len(raw) / 1e6:.1f} MB, intake function alone: {result['disposition']} "
              f"in {time.monotonic() - started:.1f} s")
    finally:
        runtime.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
