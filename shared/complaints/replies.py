"""Decisions written as the first line of a reply: "同意", "APPROVE ok, go ahead", "不接受 还要代步车".

Only the first line that is the person's own (above any quoted original) decides;
negative words are checked before positive ones ("不同意" contains "同意").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .classify import fold

# (decision, words) per step, negatives first. Words are matched on folded text
# (lower case, half-width, Traditional folded to Simplified).
WORDS: dict[str, list[tuple[str, tuple[str, ...]]]] = {
    "approval": [
        ("reject", ("reject", "rejected", "不同意", "不批准", "驳回", "拒绝")),
        ("approve", ("approve", "approved", "同意", "批准", "核准", "通过")),
    ],
    "customer_reply": [
        ("decline", ("decline", "declined", "not accept", "不接受", "不同意", "拒绝")),
        ("accept", ("accept", "accepted", "接受", "同意", "满意")),
    ],
}
_QUOTE = re.compile(r"^(>|on .+ wrote:|.*写道[:：]|-{2,}\s*(original|原始邮件)|发件人[:：]|from:\s)", re.IGNORECASE)
_PUNCT = " \t:：,，.。;；!！-—"


@dataclass(frozen=True)
class MailReply:
    """A mail on a case that may carry a decision, as intake read it."""

    sender: str  # the From address, lower case
    text: str
    verified: bool  # DMARC passed, or DKIM passed for a domain aligned with the From domain
    answers: tuple[str, ...]  # the Message-IDs it answers (In-Reply-To, References)
    message_id: str
    may_be_told: bool  # the sender is the case's customer or staff: a refusal may be explained to them


@dataclass(frozen=True)
class ReplyDecision:
    decision: str
    comment: str


def own_text(text: str) -> list[str]:
    """The reply's own lines, stopping at the quoted original."""
    lines = []
    for raw in text.splitlines():
        line = raw.strip()
        if _QUOTE.match(fold(line)):
            break
        lines.append(line)
    while lines and not lines[0]:
        lines.pop(0)
    return lines


def parse_reply(step: str, text: str) -> ReplyDecision | None:
    lines = own_text(text)
    if not lines or step not in WORDS:
        return None
    first = fold(lines[0])
    for decision, words in WORDS[step]:
        for word in sorted(words, key=len, reverse=True):
            if first.startswith(word):
                rest = lines[0][len(word):].strip(_PUNCT)
                comment = "\n".join([rest, *lines[1:]]).strip()
                return ReplyDecision(decision, comment)
    return None
