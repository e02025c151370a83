"""Every labelled sample through the intake function on the local runtime (SES event + raw
mail in S3), in order, with the cases the replies refer to seeded first; then confusion
tables and the acceptance figures of issue #3."""

from __future__ import annotations

import base64
import hashlib
import json
import os
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import boto3

from infra.local.http import recipients_of
from infra.local.runtime import LocalRuntime
from shared.complaints.deadlines import cycle_milestones
from shared.complaints.models import Case, Classification, Customer, MailMessage
from shared.complaints.ports import CaseStore
from shared.runtime.settings import settings
from shared.runtime.wiring import services
from tests.conftest import EMAILS, sample

LABELS: list[dict[str, Any]] = json.loads((EMAILS / "labels.json").read_text("utf-8"))
VIDEO_SIZE = 30 * 1024 * 1024

# The cases the replies and the repeat complaint refer to, registered before this system:
# (number, customer, category, phase, received, closed, Message-IDs of our mails to the customer).
EARLIER_CASES = [
    ("AUR-SH001-202611-00042", "wangjh@163.example", "product_quality", "investigation",
     datetime(2026, 11, 12, 6, 3, tzinfo=UTC), None, ["case-AUR-SH001-202611-00042.n1@aurora-motors.example"]),
    ("AUR-BJ002-202611-00007", "qian.li77@126.example", "service", "investigation",
     datetime(2026, 11, 3, 2, 0, tzinfo=UTC), None,
     ["case-AUR-BJ002-202611-00007.n1@aurora-motors.example", "case-AUR-BJ002-202611-00007.n2@aurora-motors.example"]),
    ("AUR-HZ005-202611-00013", "emma.schulz@outlook.example", "service", "first_contact",
     datetime(2026, 11, 13, 1, 50, tzinfo=UTC), None, []),
    ("AUR-CD004-202610-00027", "wanglei.cd@qq.example", "product_quality", "closed",
     datetime(2026, 10, 14, 3, 0, tzinfo=UTC), datetime(2026, 10, 20, 8, 0, tzinfo=UTC), []),
]


def seed(store: CaseStore, number: str, email: str, category: str, phase: str, received: datetime,
         closed: datetime | None, message_ids: list[str]) -> None:
    dealer, tenant = number.split("-")[1], store.get_tenant("aurora")
    case = Case(
        case_no=number, brand="aurora", dealer=dealer, region=tenant.dealer(dealer).region, channel="email",
        phase=phase, received_at=received, subject="(registered before this system)", description="",
        language="zh", customer=Customer(email=email), closed_at=closed,
        classification=Classification(category=category, severity="general", safety=False,
                                      media_or_regulator=False))
    case.milestones = cycle_milestones(case, received, tenant.policy_for(dealer), tenant.calendar_for(dealer))
    store.create_case(case)
    for message_id in message_ids:
        store.add_message(MailMessage(case_no=number, direction="out", message_id=message_id, at=received,
                                      sender="complaints@aurora-motors.example", recipients=[email],
                                      subject=f"[{number}]", text="", kind="acknowledgement"))


def video_mail(label: dict[str, Any]) -> tuple[bytes, bytes]:
    """labels.json's last entry: two lines about a rattle and a ~30 MB dashcam video."""
    video = os.urandom(VIDEO_SIZE)
    head = ("From: =?utf-8?B?" + base64.b64encode("张敏".encode()).decode() + f"?= <{label['customer_email']}>\r\n"
            "To: bj002@complaints.aurora-motors.example\r\nSubject: =?utf-8?B?"
            + base64.b64encode("仪表台异响（附行车记录仪视频）".encode()).decode() + "?=\r\n"
            "Date: Mon, 23 Nov 2026 09:40:00 +0800\r\nMessage-ID: <dashcam-1@mail.example>\r\nMIME-Version: 1.0\r\n"
            'Content-Type: multipart/mixed; boundary="dashcam"\r\n\r\n--dashcam\r\n'
            "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
            f"我的X7（车架号{label['vin']}）仪表台有异响，车速60公里以上就响，很烦人。\r\n"
            "附件是行车记录仪拍的视频，能听到声音。\r\n--dashcam\r\n"
            'Content-Type: video/mp4; name="dashcam.mp4"\r\nContent-Disposition: attachment; filename="dashcam.mp4"\r\n'
            "Content-Transfer-Encoding: base64\r\n\r\n").encode()
    return head + base64.encodebytes(video).replace(b"\n", b"\r\n") + b"--dashcam--\r\n", video


def table(title: str, pairs: list[tuple[str, str]]) -> str:
    """A confusion table: expected in rows, what intake did in columns."""
    labels = sorted({x for pair in pairs for x in pair})
    counts = Counter(pairs)
    width = max(len(x) for x in [*labels, title]) + 1
    lines = [title.ljust(width) + "".join(x[:12].rjust(13) for x in labels)]
    lines += [e.ljust(width) + "".join(str(counts[(e, a)] or ".").rjust(13) for a in labels) for e in labels]
    right = sum(n for (e, a), n in counts.items() if e == a)
    return "\n".join([*lines, f"{right}/{len(pairs)} correct"])


def test_every_labelled_sample_through_the_intake_function(manual_runtime: LocalRuntime) -> None:
    store = services().store
    for earlier in EARLIER_CASES:
        seed(store, *earlier)
    s3 = boto3.client("s3", region_name=manual_runtime.region)
    dispositions: list[tuple[str, str]] = []
    severities: list[tuple[str, str]] = []
    categories: list[tuple[str, str]] = []
    dealers: list[tuple[str, str]] = []
    threaded: list[tuple[str, str | None, str | None]] = []
    for index, label in enumerate(LABELS):
        raw, video = (sample(label["file"]), b"") if label["file"] else video_mail(label)
        ses_id = f"ses-{index:02d}"
        result = manual_runtime.deliver(raw, recipients_of(raw), ses_message_id=ses_id)
        name = label["file"] or "generated video mail"
        dispositions.append((label["disposition"], result["disposition"]))
        kept = s3.get_object(Bucket=settings().raw_bucket, Key=f"raw/{ses_id}")["Body"].read()
        assert hashlib.sha256(kept).digest() == hashlib.sha256(raw).digest(), name  # the raw mail, unchanged
        if label["disposition"] == "append_to_case":
            threaded.append((name, label["case_ref"], result["case_no"]))
            if label["severity"] == "critical":
                assert store.get_case(label["case_ref"]).classification.severity == "critical", name
        if result["disposition"] != "new_case" or label["disposition"] != "new_case":
            continue
        case = store.get_case(result["case_no"])
        severities.append((label["severity"], case.classification.severity))
        categories.append((label["category"], case.classification.category))
        dealers.append((label["dealer"], case.dealer or "BRAND_TRIAGE"))
        assert case.customer.email == label["customer_email"], name
        assert case.raw_mail_key == f"raw/{ses_id}", name
        assert manual_runtime.execution(case.case_no)["name"] == case.case_no
        acks = [m.mail for m in manual_runtime.outbox.for_case(case.case_no) if label["customer_email"] in m.mail.to]
        assert len(acks) == 1, name
        assert acks[0].headers["Auto-Submitted"] == "auto-replied", name
        assert acks[0].headers["X-Auto-Response-Suppress"] == "All", name
        assert acks[0].subject.endswith("We have received your complaint") == (label["language"] == "en"), name
        assert acks[0].links[0]["step"] == "status", name
        if video:
            [stored] = store.attachments(case.case_no)
            assert (stored.filename, stored.content_type, stored.size) == ("dashcam.mp4", "video/mp4", len(video))
            assert stored.sha256 == hashlib.sha256(video).hexdigest()
        if label["file"] and label["file"].startswith("p29_"):
            assert case.classification.repeat_of == "AUR-CD004-202610-00027"

    def share(pairs: list[tuple[str, str]]) -> float:
        return sum(e == a for e, a in pairs) / len(pairs)
    critical = [a for e, a in severities if e == "critical"]
    print("\n" + "\n\n".join([
        table("disposition", dispositions), table("severity", severities), table("category", categories),
        table("dealer", dealers),
        "threaded replies: " + ", ".join(f"{n[:3]} -> {got} ({'right' if got == want else 'WRONG'})"
                                         for n, want, got in threaded),
        f"critical recall {critical.count('critical')}/{len(critical)}; category accuracy {share(categories):.0%}; "
        f"dealer routing {share(dealers):.0%}",
    ]))
    assert share(dispositions) == 1.0
    assert critical and all(a == "critical" for a in critical)
    assert share(categories) >= 0.90
    assert share(dealers) >= 0.95
    assert len(threaded) == 3 and all(want == got for _, want, got in threaded)
    # Nothing a person did not write was answered.
    ignored = {lb["customer_email"] for lb in LABELS if lb["disposition"].startswith("ignore_") and lb["customer_email"]}
    assert not any(set(m.mail.to) & ignored for m in manual_runtime.outbox.all())
