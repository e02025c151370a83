"""The classifier measured: on the labelled corpus (tuning and held-out parts) and for speed.

    python -m benchmarks.classify report [--part tuning|heldout|all] [--misses]
    python -m benchmarks.classify speed [--kb 20] [--runs 200]

The corpus lives in tests/data/corpus/<part>/ (.eml files and labels.json). The held-out
part is never used to tune the rules (docs/classification.md); when it is absent the
report says so. Each mail is read as intake reads it (parse_mail, then classify on its
subject and text), offline.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from shared.complaints.classify import ClassificationResult, classify
from shared.complaints.mail import parse_mail

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "corpus"
PARTS = ("tuning", "heldout")
CATEGORIES = ("product_quality", "service", "price", "other")
SEVERITIES = ("critical", "major", "general")
RECEIVED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@dataclass
class Scored:
    label: dict[str, Any]
    result: ClassificationResult


@dataclass
class Report:
    part: str
    scored: list[Scored] = field(default_factory=list)

    @property
    def category_confusion(self) -> Counter[tuple[str, str]]:
        return Counter((s.label["category"], s.result.category) for s in self.scored)

    @property
    def severity_confusion(self) -> Counter[tuple[str, str]]:
        return Counter((s.label["severity"], s.result.severity) for s in self.scored)

    @property
    def category_accuracy(self) -> float:
        return _share([s.label["category"] == s.result.category for s in self.scored])

    @property
    def safety_recall(self) -> float:
        """Safety complaints made critical (certain or possible)."""
        return _share([s.result.severity == "critical" for s in self.scored if s.label["safety"]])

    @property
    def critical_recall(self) -> float:
        return _share([s.result.severity == "critical" for s in self.scored if s.label["severity"] == "critical"])

    @property
    def non_critical_kept(self) -> float:
        """Non-critical complaints left non-critical."""
        return _share([s.result.severity != "critical" for s in self.scored if s.label["severity"] != "critical"])

    @property
    def threat_accuracy(self) -> float:
        return _share([s.label["media_or_regulator"] == s.result.media_or_regulator for s in self.scored])

    def misses(self) -> list[Scored]:
        return [s for s in self.scored if _wrong(s)]

    def render(self, *, misses: bool = False) -> str:
        n = len(self.scored)
        lines = [
            f"== {self.part}: {n} mails",
            f"category {self.category_accuracy:.1%} · safety complaints critical {self.safety_recall:.1%} · "
            f"critical recall {self.critical_recall:.1%} · non-critical kept non-critical {self.non_critical_kept:.1%} · "
            f"threat flag {self.threat_accuracy:.1%}",
            "",
            _table("category: label \\ engine", CATEGORIES, self.category_confusion),
            "",
            _table("severity: label \\ engine", SEVERITIES, self.severity_confusion),
        ]
        if misses:
            lines.append("")
            for s in self.misses():
                label, r = s.label, s.result
                lines.append(f"- {label['file']} [{', '.join(label.get('tags', []))}]: label {label['category']}/"
                             f"{label['severity']} safety={label['safety']} threat={label['media_or_regulator']}; engine "
                             f"{r.category}/{r.severity} safety={r.safety} possible={r.possible_safety} "
                             f"threat={r.media_or_regulator} conf={r.confidence}")
                lines.extend(f"    {reason}" for reason in r.reasons)
        return "\n".join(lines)


def _wrong(s: Scored) -> bool:
    label, r = s.label, s.result
    return (label["category"] != r.category or (label["severity"] == "critical") != (r.severity == "critical")
            or (label["safety"] and r.severity != "critical"))


def _share(hits: list[bool]) -> float:
    return sum(hits) / len(hits) if hits else 1.0


def _table(title: str, keys: tuple[str, ...], confusion: Counter[tuple[str, str]]) -> str:
    width = max(len(title), 16) + 1
    rows = [title.ljust(width) + "".join(k[:10].rjust(11) for k in keys)]
    for want in keys:
        rows.append(want.ljust(width) + "".join(str(confusion[(want, got)]).rjust(11) for got in keys))
    return "\n".join(rows)


def corpus_labels(part: str | Path) -> list[dict[str, Any]] | None:
    """The labels of one part of the corpus (or of any folder in its format, such as
    `complaints corrections export`'s), or None when it is absent."""
    folder = part if isinstance(part, Path) else CORPUS / part
    labels = folder / "labels.json"
    if not labels.is_file():
        return None
    data: list[dict[str, Any]] = json.loads(labels.read_text("utf-8"))
    return [label for label in data if (folder / label["file"]).is_file()]


def score(part: str | Path) -> Report | None:
    labels = corpus_labels(part)
    if labels is None:
        return None
    folder = part if isinstance(part, Path) else CORPUS / part
    report = Report(part if isinstance(part, str) else str(part))
    for label in labels:
        mail = parse_mail((folder / label["file"]).read_bytes(), received_at=RECEIVED)
        report.scored.append(Scored(label, classify(mail.subject, mail.text)))
    return report


def speed(kb: int = 20, runs: int = 200, language: str = "all") -> dict[str, float]:
    """Median and 95th percentile milliseconds of CPU (this process, so other load on the
    machine does not count) to classify a mail of ``kb`` KB of UTF-8 text: the labelled
    samples' complaint texts (``language``: all, zh or en), repeated to size."""
    from tests.unit.test_mail_parsing import labelled_samples

    texts = [s.mail.text for s in labelled_samples() if s.label["disposition"] == "new_case" and s.mail.text
             and language in ("all", s.label["language"])]
    body = ""
    while len(body.encode("utf-8")) < kb * 1024:
        body += "\n\n".join(texts) + "\n\n"
    body = body.encode("utf-8")[: kb * 1024].decode("utf-8", "ignore")
    classify("warm-up", body)
    timings = []
    for _ in range(runs):
        start = time.process_time()
        classify("投诉 complaint", body)
        timings.append((time.process_time() - start) * 1000)
    timings.sort()
    return {"kb": kb, "chars": len(body), "median_ms": statistics.median(timings),
            "p95_ms": timings[int(0.95 * (len(timings) - 1))], "max_ms": timings[-1]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    rep = sub.add_parser("report", help="confusion tables on the labelled corpus")
    rep.add_argument("--part", choices=[*PARTS, "all"], default="all")
    rep.add_argument("--misses", action="store_true", help="list the mails the engine got wrong, with its reasons")
    rep.add_argument("--corpus", type=Path, action="append", default=[],
                     help="replay another folder of .eml files + labels.json (e.g. `complaints corrections export`'s)")
    spd = sub.add_parser("speed", help="milliseconds per mail on one core")
    spd.add_argument("--kb", type=int, default=20)
    spd.add_argument("--runs", type=int, default=200)
    spd.add_argument("--language", choices=["all", "zh", "en"], default="all")
    args = parser.parse_args()
    if args.command == "speed":
        figures = speed(args.kb, args.runs, args.language)
        print(f"classify a {figures['kb']:g} KB mail ({figures['chars']:g} characters, {args.language}), one core, CPU: "
              f"median {figures['median_ms']:.1f} ms, p95 {figures['p95_ms']:.1f} ms, max {figures['max_ms']:.1f} ms")
        return
    parts: list[str | Path] = list(args.corpus) or list(PARTS if args.part == "all" else (args.part,))
    for part in parts:
        report = score(part)
        if report is None:
            print(f"== {part}: ABSENT — no {CORPUS / part / 'labels.json'} (the held-out part is added by the lead)\n")
            continue
        print(report.render(misses=args.misses) + "\n")


if __name__ == "__main__":
    main()
