"""``complaints``: run the local stack, send mail to it, look at what it did.

    complaints run                      start everything with the demo tenant
    complaints send FILE.eml [...]      deliver mail (HTTP /_local/inbound, or --smtp)
    complaints outbox [--case NO]       list the mail the system sent, with links
    complaints clock [--advance-hours N | --set ISO]
    complaints case CASE_NO [--as EMAIL]
    complaints report --month 2026-11 [--dealer SH001] [--format html|csv|json] [--out FILE] [--send]
    complaints corrections export DIR [--brand B] [--since YYYY-MM]   staff corrections as labelled examples
    complaints classify FILE.eml [...] [--explain] [--rules OVERLAY.json] [--json]   offline, no stack
"""

from __future__ import annotations

import argparse
import json
import signal
import smtplib
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from . import cli_corrections, cli_reports
from .settings import LocalSettings


def _http(settings: LocalSettings, method: str, path: str, body: bytes | None = None,
          headers: dict[str, str] | None = None) -> Any:
    req = urllib.request.Request(settings.base_url + path, data=body, method=method, headers=headers or {})  # noqa: S310 - our own http:// base URL
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:  # noqa: S310
            return json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return json.loads(exc.read() or b"null") | {"status": exc.code}
    except urllib.error.URLError as exc:
        sys.exit(f"The local stack is not running at {settings.base_url} ({exc.reason}). Start it with: make run")


def cmd_run(settings: LocalSettings, args: argparse.Namespace) -> None:
    from .http import LocalHttpServer
    from .runtime import LocalConfig, LocalRuntime
    from .smtp import start_smtp

    runtime = LocalRuntime(LocalConfig(clock=args.clock or settings.clock, public_base_url=settings.base_url)).start()
    http = LocalHttpServer(runtime, settings).start()
    smtp = start_smtp(runtime, settings.host, settings.smtp_port)
    print(f"""
Complaint handling — local stack (demo tenant: Aurora Motors, 5 dealers)
  clock       {runtime.clock.mode} · now {runtime.clock.now():%Y-%m-%d %H:%M} UTC   {settings.base_url}/_local/clock
  outbox      {settings.base_url}/_local/mail        (every mail the system sent, with its links)
  SMTP        {settings.host}:{settings.smtp_port}   (complaints@aurora-motors.example, sh001@complaints.aurora-motors.example, ...)
  HTTP        {settings.base_url}   (link pages /a/..., staff API /api/..., tools /_local/...)

Try it:  .venv/bin/complaints send tests/data/emails/p01_brake_failure_sh001.eml
then open the outbox and click the links as the dealer, the managers and the customer.
Ctrl-C stops.""", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    from .moto_patches import prune_threads

    while not stop.wait(30):
        prune_threads()
    smtp.stop()
    http.stop()
    runtime.stop()


def cmd_send(settings: LocalSettings, args: argparse.Namespace) -> None:
    for name in args.files:
        raw = Path(name).read_bytes()
        if args.smtp:
            from .http import recipients_of

            recipients = args.to or recipients_of(raw)
            with smtplib.SMTP(settings.host, settings.smtp_port, timeout=60) as smtp:
                refused = smtp.sendmail("sender@mail.example", recipients, raw)
            print(f"{name}: sent by SMTP to {', '.join(r for r in recipients if r not in refused)}")
            continue
        query = f"?recipient={','.join(args.to)}" if args.to else ""
        result = _http(settings, "POST", f"/_local/inbound{query}", raw, {"Content-Type": "message/rfc822"})
        case = result.get("case_no")
        print(f"{name}: {result.get('disposition')}" + (f" · {case} · {settings.base_url}/_local/mail?case={case}" if case else ""))


def cmd_outbox(settings: LocalSettings, args: argparse.Namespace) -> None:
    mails = _http(settings, "GET", "/_local/mail.json" + (f"?case={args.case}" if args.case else ""))
    for m in mails:
        print(f"#{m['id']} {m['sent_at']} → {', '.join(m['to'])}\n    {m['subject']}")
        for link in m["links"]:
            print(f"    [{link['step']}] {link['url']}")


def cmd_clock(settings: LocalSettings, args: argparse.Namespace) -> None:
    if args.advance_hours is not None:
        data = {"advance_hours": args.advance_hours}
    elif args.set:
        data = {"set": args.set}
    else:
        print(json.dumps(_http(settings, "GET", "/_local/clock"), indent=2))
        return
    print(json.dumps(_http(settings, "POST", "/_local/clock", json.dumps(data).encode(),
                           {"Content-Type": "application/json"}), indent=2))


def cmd_case(settings: LocalSettings, args: argparse.Namespace) -> None:
    token = _http(settings, "POST", "/_local/token", json.dumps({"email": args.as_}).encode(),
                  {"Content-Type": "application/json"})["token"]
    print(json.dumps(_http(settings, "GET", f"/api/cases/{args.case_no}", headers={"Authorization": f"Bearer {token}"}),
                     indent=2, ensure_ascii=False))


def cmd_classify(settings: LocalSettings, args: argparse.Namespace) -> None:
    """The classification of each mail as intake would make it, offline: parse, classify."""
    from datetime import UTC, datetime

    from shared.complaints.classify import classify
    from shared.complaints.mail import parse_mail
    from shared.complaints.rulebook import rulebook

    try:
        overlay = json.loads(Path(args.rules).read_text("utf-8")) if args.rules else None
        rules = rulebook(overlay)
    except (OSError, ValueError) as exc:
        sys.exit(f"--rules {args.rules}: not a valid rules overlay ({exc})")
    for name in args.files:
        try:
            raw = Path(name).read_bytes()
        except OSError as exc:
            sys.exit(f"{name}: {exc.strerror}")
        mail = parse_mail(raw, received_at=datetime.now(UTC))
        result = classify(mail.subject, mail.text, rules)
        if args.json:
            print(json.dumps({"file": name, "category": result.category, "severity": result.severity,
                              "safety": result.safety, "possible_safety": result.possible_safety,
                              "media_or_regulator": result.media_or_regulator,
                              "demands_compensation": result.demands_compensation, "confidence": result.confidence,
                              "evidence": [e.model_dump() for e in result.evidence], "reasons": result.reasons},
                             ensure_ascii=False))
            continue
        flags = [flag for flag, on in (("safety", result.safety), ("possible safety — please confirm", result.possible_safety),
                                       ("media/regulator/court", result.media_or_regulator),
                                       ("compensation demand", result.demands_compensation)) if on]
        print(f"{name}: {result.severity} · {result.category} · confidence {result.confidence:.2f}"
              + (f" · {', '.join(flags)}" if flags else ""))
        if args.explain:
            print(f"  subject: {mail.subject[:120]}")
            for reason in result.reasons:
                print(f"  - {reason}")
            if result.evidence:
                print("  evidence (kind · weight · phrase):")
                for e in result.evidence:
                    print(f"    {e.kind:<26} {e.weight:>4g}  {e.phrase}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="complaints", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the local stack")
    run.add_argument("--clock", choices=["real", "manual", "warp"])
    send = sub.add_parser("send", help="deliver .eml files to the local stack")
    send.add_argument("files", nargs="+")
    send.add_argument("--to", action="append", help="envelope recipient (default: the mail's To/Cc)")
    send.add_argument("--smtp", action="store_true", help="go through SMTP instead of /_local/inbound")
    outbox = sub.add_parser("outbox", help="list sent mail with links")
    outbox.add_argument("--case")
    clock = sub.add_parser("clock", help="show or move the clock")
    clock.add_argument("--advance-hours", type=float)
    clock.add_argument("--set")
    case = sub.add_parser("case", help="show a case as staff see it")
    case.add_argument("case_no")
    case.add_argument("--as", dest="as_", default="cr.center@aurora-motors.example")
    cli_reports.add_parser(sub)
    classify = sub.add_parser("classify", help="classify .eml files offline and show why (no stack, no AWS)")
    classify.add_argument("files", nargs="+")
    classify.add_argument("--explain", action="store_true", help="the evidence and the reasons behind each decision")
    classify.add_argument("--rules", help="a brand's rules overlay (JSON, the shape of policy.classification.rules)")
    classify.add_argument("--json", action="store_true", help="one JSON object per mail")
    cli_corrections.add_parser(sub)
    args = parser.parse_args(argv)
    settings = LocalSettings()
    {"run": cmd_run, "send": cmd_send, "outbox": cmd_outbox, "clock": cmd_clock, "case": cmd_case,
     "report": cli_reports.cmd_report, "corrections": cli_corrections.cmd_corrections,
     "classify": cmd_classify}[args.command](settings, args)


if __name__ == "__main__":
    main()
