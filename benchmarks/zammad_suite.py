"""Our parser and intake against Zammad's suite of real-world mails that broke a mature
helpdesk's parser (``test/data/mail/mailNNN.box``, each with its expected parse in
``mailNNN.yml``, in the public zammad/zammad repository).

    python -m benchmarks.zammad_suite --dir /path/to/mails [--json PATH]

The mails are not part of this project: fetch them, keep them outside the tree, point
``--dir`` at them. Each ``mailNNN.box`` with a ``mailNNN.yml`` beside it is compared on:

- sender: Zammad's ``from_email`` against our ``from_address`` as the mailbox each names
  (``_mailbox``: case-insensitive; a trailing dot or a stray ``>`` that Zammad keeps and we
  drop, and our quotes around a local part with spaces, which Zammad writes bare);
- subject: equal once whitespace runs are collapsed (Zammad keeps a trailing space);
- body lost: Zammad found visible text (its ``body`` without markup, not "no visible
  content") and our ``text`` is empty;
- attachments, where the yml lists them: the file names, without the HTML original that
  Zammad lists as ``message.html`` (``original-format``) and we keep as the mail's HTML.

Then each mail goes through intake on the in-memory ports (``tests.fakes``), sent to the
demo brand's address, with the Return-Path as the envelope sender: its disposition
(new case, ignored bounce, auto-reply, bulk, held), and for a case the customer, language
and severity. A crash is an exception out of the parser or intake; intake answering 5xx
would be one.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import sys
import traceback
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from shared.complaints.intake import InboundMail, Intake, SesVerdicts
from shared.complaints.mail import ParsedMail, parse_mail

RECEIVED = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)
BRAND_ADDRESS = "kefu@aurora-motors.example"


class _RubyTolerantLoader(yaml.SafeLoader):
    """Zammad's yml files tag their mappings ``!ruby/hash:ActiveSupport::…``: read them as plain mappings."""


def _ruby_mapping(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> Any:
    if isinstance(node, yaml.MappingNode):
        return loader.construct_mapping(node, deep=True)
    if isinstance(node, yaml.SequenceNode):
        return loader.construct_sequence(node, deep=True)
    return loader.construct_scalar(node)


_RubyTolerantLoader.add_multi_constructor("!ruby/", _ruby_mapping)


@dataclass
class MailResult:
    name: str
    crashed: str | None = None
    sender_expected: str | None = None
    sender_ours: str | None = None
    subject_expected: str | None = None
    subject_ours: str | None = None
    body_expected: bool = False
    body_ours: bool = False
    attachments_expected: list[str] | None = None
    attachments_ours: list[str] = field(default_factory=list)
    kind: str | None = None
    disposition: str | None = None
    customer: str | None = None
    language: str | None = None
    severity: str | None = None
    warnings: list[str] = field(default_factory=list)

    @property
    def sender_agrees(self) -> bool | None:
        if self.sender_expected is None:
            return None
        return _mailbox(self.sender_ours or "") == _mailbox(self.sender_expected)

    @property
    def subject_agrees(self) -> bool | None:
        if self.subject_expected is None:
            return None
        return _squash(self.subject_ours or "") == _squash(self.subject_expected)

    @property
    def body_lost(self) -> bool:
        return self.body_expected and not self.body_ours

    @property
    def attachments_agree(self) -> bool | None:
        if self.attachments_expected is None:
            return None
        return sorted(self.attachments_expected) == sorted(self.attachments_ours)


def _mailbox(address: str) -> str:
    """The mailbox an address names, as both sides write it: we quote a local part with spaces
    ("power quadrant system"@example.com), Zammad writes it bare; Zammad keeps a trailing dot
    (the DNS root) and, in 076, a stray ``>`` after the address; case does not matter."""
    local, _, domain = address.strip().rstrip(">").rstrip(".").rpartition("@")
    if len(local) > 1 and local.startswith('"') and local.endswith('"'):
        local = local[1:-1]
    return f"{local}@{domain}".lower()


def _squash(text: str) -> str:
    return " ".join(text.split())


def _visible(body: str) -> bool:
    text = html.unescape(re.sub(r"<[^>]*>", " ", body))
    return bool(text.strip()) and text.strip() != "no visible content"


def _expected_attachments(expected: dict[str, Any]) -> list[str] | None:
    if "attachments" not in expected:
        return None
    names = []
    for entry in expected["attachments"] or []:
        preferences = entry.get("preferences") or {}
        if entry.get("original_format") or preferences.get("original-format"):
            continue  # the HTML original: our ParsedMail.html
        names.append(str(entry.get("filename")))
    return names


def _return_path(raw: bytes) -> str | None:
    found = re.search(rb"^Return-Path:\s*<?([^>\s]*)>?", raw, re.MULTILINE | re.IGNORECASE)
    return found.group(1).decode("ascii", "replace") if found and b"@" in found.group(1) else None


def run_one(box: Path, expected: dict[str, Any]) -> MailResult:
    result = MailResult(name=box.stem, sender_expected=expected.get("from_email"),
                        subject_expected=None if expected.get("subject") is None else str(expected["subject"]),
                        body_expected=_visible(str(expected.get("body") or "")),
                        attachments_expected=_expected_attachments(expected))
    raw = box.read_bytes()
    envelope = _return_path(raw)
    try:
        parsed: ParsedMail = parse_mail(raw, received_at=RECEIVED, envelope_from=envelope)
    except Exception:  # noqa: BLE001 - a crash is what this counts
        result.crashed = traceback.format_exc(limit=3)
        return result
    result.sender_ours, result.subject_ours, result.body_ours = parsed.from_address, parsed.subject, bool(parsed.text)
    result.attachments_ours = [a.filename for a in parsed.attachments]
    result.kind, result.warnings = parsed.kind, parsed.warnings
    try:
        _through_intake(result, raw, envelope)
    except Exception:  # noqa: BLE001 - a crash is what this counts
        result.crashed = traceback.format_exc(limit=3)
    return result


def _through_intake(result: MailResult, raw: bytes, envelope: str | None) -> None:
    from tests.fakes import Domain  # the in-memory ports: intake without AWS

    domain = Domain(RECEIVED)
    intake = Intake(domain.store, domain.blobs, domain.workflow, domain.clock, domain.lifecycle)
    key = f"raw/{result.name}"
    domain.blobs.put(key, raw)
    outcome = intake.receive(InboundMail(result.name, key, [BRAND_ADDRESS], SesVerdicts(), envelope, RECEIVED))
    result.disposition = outcome.disposition
    if outcome.case_no:
        case = domain.store.get_case(outcome.case_no)
        result.customer, result.language = case.customer.email, case.language
        result.severity = case.classification.severity


def run(directory: Path) -> list[MailResult]:
    results = []
    for box in sorted(directory.glob("*.box")):
        yml = box.with_suffix(".yml")
        if not yml.exists():
            continue
        expected = yaml.load(yml.read_text("utf-8"), Loader=_RubyTolerantLoader) or {}
        results.append(run_one(box, expected))
    return results


def summary(results: list[MailResult]) -> dict[str, Any]:
    def share(values: list[bool | None]) -> tuple[int, int]:
        judged = [v for v in values if v is not None]
        return sum(judged), len(judged)

    sender, subject = share([r.sender_agrees for r in results]), share([r.subject_agrees for r in results])
    attachments = share([r.attachments_agree for r in results])
    dispositions: dict[str, int] = {}
    for r in results:
        dispositions[r.disposition or "-"] = dispositions.get(r.disposition or "-", 0) + 1
    return {
        "mails": len(results), "crashes": sum(1 for r in results if r.crashed),
        "sender_agree": sender, "subject_agree": subject, "attachments_agree": attachments,
        "bodies_lost": [r.name for r in results if r.body_lost],
        "dispositions": dispositions,
    }


def _percent(pair: tuple[int, int]) -> str:
    agree, judged = pair
    return f"{agree}/{judged} ({100 * agree / judged:.1f} %)" if judged else "-"


def report(results: list[MailResult]) -> str:
    lines = ["| mail | sender | subject | body | attachments | kind | disposition | customer | language | severity |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    mark = {True: "ok", False: "DIFF", None: "-"}
    for r in results:
        body = "LOST" if r.body_lost else ("ok" if r.body_ours or not r.body_expected else "-")
        lines.append(f"| {r.name} | {mark[r.sender_agrees]} | {mark[r.subject_agrees]} | {body} "
                     f"| {mark[r.attachments_agree]} | {r.kind or 'CRASH'} | {r.disposition or '-'} "
                     f"| {'outer sender' if r.customer == r.sender_ours and r.customer else (r.customer or '-')} "
                     f"| {r.language or '-'} | {r.severity or '-'} |")
    s = summary(results)
    lines += ["", f"mails {s['mails']}, crashes {s['crashes']}, sender agreement {_percent(s['sender_agree'])}, "
                  f"subject agreement {_percent(s['subject_agree'])}, attachments {_percent(s['attachments_agree'])}, "
                  f"bodies lost {len(s['bodies_lost'])} {s['bodies_lost'] or ''}".rstrip(),
              "dispositions: " + ", ".join(f"{k} {v}" for k, v in sorted(s["dispositions"].items()))]
    for r in results:
        if r.crashed:
            lines.append(f"\n{r.name} crashed:\n{r.crashed}")
        for what, agrees, ours, theirs in (("sender", r.sender_agrees, r.sender_ours, r.sender_expected),
                                           ("subject", r.subject_agrees, r.subject_ours, r.subject_expected),
                                           ("attachments", r.attachments_agree, r.attachments_ours,
                                            r.attachments_expected)):
            if agrees is False:
                lines.append(f"{r.name} {what}: ours {ours!r}, Zammad's {theirs!r}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, required=True, help="a directory of mailNNN.box / mailNNN.yml")
    parser.add_argument("--json", type=Path, help="also write the results as JSON")
    args = parser.parse_args(argv)
    results = run(args.dir)
    if not results:
        print(f"no .box with a .yml beside it in {args.dir}", file=sys.stderr)
        return 2
    print(report(results))
    if args.json:
        args.json.write_text(json.dumps({"summary": summary(results), "mails": [asdict(r) for r in results]},
                                        ensure_ascii=False, indent=1, default=str), "utf-8")
    return 1 if summary(results)["crashes"] else 0


if __name__ == "__main__":
    sys.exit(main())
