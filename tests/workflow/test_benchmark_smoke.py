"""The lifecycle benchmark in miniature: three happy-path cases through the same
function that ``make benchmark`` runs with 100. Counts only, never seconds."""

from __future__ import annotations

import re

from benchmarks.lifecycles import EMAILS, render, run_benchmark, with_message_id

MESSAGE_ID = re.compile(rb"^Message-ID:\s*<([^>]*)>", re.IGNORECASE | re.MULTILINE)


def test_three_happy_lifecycles_succeed_with_equal_plausible_counts() -> None:
    result = run_benchmark(cases=3, concurrency=3, scenario="happy")
    assert result.statuses == {"SUCCEEDED": 3}, render(result)
    assert len(result.per_case) == 3 and not result.notes, render(result)
    assert not result.lambda_errors, result.lambda_errors

    # The happy path is the same walk through the state machine for every case.
    for name in ("transitions", "lambda_tasks", "clicks"):
        values = {getattr(c, name) for c in result.per_case}
        assert len(values) == 1 and values.pop() > 0, (name, result.per_case)
    case = result.per_case[0]
    assert case.transitions > case.lambda_tasks  # Choice and Succeed states invoke nothing
    assert all(c.mails > 0 for c in result.per_case)

    # The Lambda counter agrees with the histories: the intake, the state machine's
    # tasks, and a GET and a POST of the link page for every persona click.
    assert sum(result.lambda_calls.values()) == sum(1 + c.lambda_tasks + 2 * c.clicks for c in result.per_case)
    assert result.lambda_calls["complaints-local-intake_email"] == 3

    assert result.dynamodb_item_writes > 0 and result.dynamodb_wru >= result.dynamodb_item_writes
    assert result.dynamodb_rru > 0 and result.mails_total >= 3
    assert result.virtual_days > 0


def test_each_copy_gets_its_own_message_id_and_attachments_keep_theirs() -> None:
    folded = (EMAILS / "p27_oddly_folded_headers_en_hz005.eml").read_bytes()
    ids = {MESSAGE_ID.findall(with_message_id(folded, n))[0] for n in (1, 2)}
    assert len(ids) == 2 and all(i.endswith(b"@corp.example") for i in ids), ids

    forwarded = (EMAILS / "p13_hotline400_forward_rfc822_cd004.eml").read_bytes()
    before, after = MESSAGE_ID.findall(forwarded), MESSAGE_ID.findall(with_message_id(forwarded, 7))
    assert len(after) == 2 and after[0] != before[0] and after[1] == before[1]
