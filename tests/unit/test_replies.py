"""Decisions by reply mail: parsing the first line, and who may decide that way."""

from __future__ import annotations

import pytest

from shared.complaints.actions import LinkActions
from shared.complaints.replies import MailReply, parse_reply
from tests.unit.test_lifecycle import T0, approval_waiting


@pytest.mark.parametrize(("step", "text", "decision", "comment"), [
    ("approval", "同意\n\n> 请审批处理方案", "approve", ""),
    ("approval", "APPROVE - fine by me", "approve", "fine by me"),
    ("approval", "批准。", "approve", ""),
    ("approval", "不同意，补偿过高\n谢谢", "reject", "补偿过高\n谢谢"),
    ("approval", "駁回 請補充代步車", "reject", "請補充代步車"),
    ("approval", "Reject: add a loan car\nOn Mon, 23 Nov 2026 care@aurora wrote:\n> approve", "reject", "add a loan car"),
    ("customer_reply", "接受", "accept", ""),
    ("customer_reply", "不接受，我要退车", "decline", "我要退车"),
    ("customer_reply", "Accepted, thanks", "accept", "thanks"),
])
def test_first_line_decides(step: str, text: str, decision: str, comment: str) -> None:
    parsed = parse_reply(step, text)
    assert parsed is not None and (parsed.decision, parsed.comment) == (decision, comment)


@pytest.mark.parametrize("text", ["", "> 同意", "Thanks for the update, see you Monday", "我想问一下进度"])
def test_other_replies_decide_nothing(text: str) -> None:
    assert parse_reply("approval", text) is None and parse_reply("customer_reply", text) is None


def _task_mail(d: object, no: str, key: str) -> str:
    """The Message-ID of the mail we sent for the task ``key``."""
    return next(m.message_id for m in d.store.messages(no)  # type: ignore[attr-defined]
                if m.direction == "out" and m.task_key == key)


def _reply(sender: str, text: str, verified: bool, answers: tuple[str, ...]) -> MailReply:
    return MailReply(sender=sender.lower(), text=text, verified=verified, answers=answers, message_id="m1",
                     may_be_told=True)


def test_approver_decides_by_reply() -> None:
    d, no = approval_waiting()
    actions = LinkActions(d.lifecycle, d.links)
    answers = (_task_mail(d, no, "approval-2"),)
    assert actions.decide_by_mail(no, _reply("Service.SH001@dealers.example", "同意", True, answers)) == "approve"
    assert d.workflow.completed[-1] == ("t2", {"task_key": "approval-2", "outcome": "approve"})
    d.lifecycle.record(no, "approval", "approval-2")
    event = [e for e in d.store.events(no) if e.type == "approval_recorded"][-1]
    assert event.actor == "service.sh001@dealers.example" and event.summary.endswith("(by reply mail)")


@pytest.mark.parametrize(("sender", "verified", "answering", "text", "problem", "hint"), [
    ("gm.sh001@dealers.example", True, True, "同意", "sender", "本环节等待的人"),  # not this level's approver
    ("service.sh001@dealers.example", False, True, "同意", "unverified", "DMARC"),
    ("service.sh001@dealers.example", True, False, "同意", "not_an_answer", "直接回复我们为该环节发出的邮件"),
    ("service.sh001@dealers.example", True, True, "驳回", "incomplete", "驳回时请在第一行写明意见"),
])
def test_replies_that_cannot_decide_get_a_polite_explanation(sender: str, verified: bool, answering: bool,
                                                             text: str, problem: str, hint: str) -> None:
    d, no = approval_waiting()
    d.clock.set(T0)
    before = len(d.workflow.completed)
    answers = (_task_mail(d, no, "approval-2"),) if answering else ("someone-else@example",)
    assert LinkActions(d.lifecycle, d.links).decide_by_mail(no, _reply(sender, text, verified, answers)) is None
    assert len(d.workflow.completed) == before
    explanation = d.mailer.to(sender)[-1]
    assert "未能作为决定" in explanation.subject and hint in explanation.text
    case = d.store.get_case(no)
    assert case.subject not in explanation.text and "审批" not in explanation.text  # nothing of the case or step
    refused = [e for e in d.store.events(no) if e.type == "decision_by_mail_refused"]
    assert [e.data["problem"] for e in refused] == [problem]
