"""``complaints corrections export DIR``: what staff corrected or confirmed, as labelled examples.

    complaints corrections export DIR [--brand B] [--since YYYY-MM] [--as EMAIL]

Writes ``<case_no>.eml`` for every case whose classification the brand's staff corrected, or
confirmed from the review queue (the raw mail as received; a phone or walk-in complaint: a mail
of its subject and text), and ``labels.json`` in the corpus format that the classification
report replays (``benchmarks/classify.py --corpus DIR``). The labels carry no personal data; the
mails do, as received: DIR is the brand's own data — keep it where the brand's mail is kept.
Goes through the staff API (``GET /api/corrections``) with a token for ``--as`` (the brand CR
center; nobody else may export).
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.parse
from pathlib import Path

from .cli_reports import DEFAULT_AS, _request
from .settings import LocalSettings


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    corrections = sub.add_parser("corrections", help="staff corrections as labelled examples",
                                 description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = corrections.add_subparsers(dest="action", required=True)
    export = actions.add_parser("export", help="write DIR/<case_no>.eml and DIR/labels.json (the brand's own data: "
                                               "the mails hold personal data as received)",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    export.add_argument("dir", type=Path)
    export.add_argument("--brand", default="aurora")
    export.add_argument("--since", help="YYYY-MM: corrections made in that month or later")
    export.add_argument("--as", dest="as_", default=DEFAULT_AS, help="the brand CR center's staff e-mail")


def cmd_corrections(settings: LocalSettings, args: argparse.Namespace) -> None:
    status, body = _request(settings, "POST", "/_local/token", json.dumps({"email": args.as_, "brand": args.brand}).encode(),
                            {"Content-Type": "application/json"})
    if status != 200:
        sys.exit(f"{args.as_} is not staff of brand {args.brand}")
    auth = {"Authorization": f"Bearer {json.loads(body)['token']}"}
    query = "?" + urllib.parse.urlencode({"since": args.since}) if args.since else ""
    status, body = _request(settings, "GET", f"/api/corrections{query}", headers=auth)
    if status != 200:
        sys.exit(f"export refused ({status}): {body.decode('utf-8', 'replace')[:300]}")
    examples = json.loads(body)["examples"]
    args.dir.mkdir(parents=True, exist_ok=True)
    written = []
    for example in examples:
        case_no = example["file"].removesuffix(".eml")
        status, mail = _request(settings, "GET", f"/api/corrections/{urllib.parse.quote(case_no)}/mail", headers=auth)
        if status != 200:
            print(f"{case_no}: mail not exported ({status}); left out of labels.json", file=sys.stderr)
            continue
        (args.dir / example["file"]).write_bytes(mail)
        written.append(example)
    (args.dir / "labels.json").write_text(json.dumps(written, ensure_ascii=False, indent=2) + "\n", "utf-8")
    print(f"{len(written)} labelled examples in {args.dir} (labels.json)")
