"""``complaints``: run the local stack, send mail to it, look at what it did.

    complaints run                      start everything with the demo tenant (data kept in COMPLAINTS_DATA_DIR)
    complaints reset [--yes]            empty the data folder (the stack must be stopped)
    complaints send FILE.eml [...]      deliver mail (HTTP /_local/inbound, or --smtp)
    complaints outbox [--case NO]       list the mail the system sent, with links
    complaints cases [--phase P]        list the cases, about to breach first
    complaints clock [--advance-hours N | --set ISO]
    complaints case CASE_NO [--as EMAIL]
    complaints report --month YYYY-MM [--dealer SH001] [--format html|csv|json] [--out FILE] [--send]
    complaints corrections export DIR [--brand B] [--since YYYY-MM]   staff corrections as labelled examples
    complaints classify FILE.eml [...] [--explain] [--rules OVERLAY.json] [--json]   offline, no stack

Settings come from the environment: COMPLAINTS_HTTP_PORT (8080), COMPLAINTS_SMTP_PORT (2525),
COMPLAINTS_CLOCK (real | manual | warp), COMPLAINTS_DATA_DIR (.local-data). The commands that
talk to a running stack need the same ports as ``complaints run`` got.
"""

from __future__ import annotations

import argparse
import json
import signal
import smtplib
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from . import cli_corrections, cli_reports
from .settings import LocalSettings

SAVE_EVERY_S = 30


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
    from .moto_patches import prune_threads
    from .persistence import DataDir, DataDirInUseError
    from .runtime import LocalConfig, LocalRuntime
    from .smtp import start_smtp

    settings.token_secret = DataDir(settings.data_dir).create().secret("staff")
    started = time.monotonic()
    config = LocalConfig(clock=args.clock or settings.clock, data_dir=settings.data_dir)
    runtime = LocalRuntime(config)
    # Bound before the runtime starts: with COMPLAINTS_HTTP_PORT=0 the system picks the port, and the
    # links in mail need it (the banner says which; tests start stacks side by side this way).
    http = LocalHttpServer(runtime, settings)
    settings.http_port = http.port
    config.public_base_url = settings.base_url
    try:
        runtime.start()
    except DataDirInUseError as exc:
        http.stop()
        sys.exit(f"{exc}. Stop it, or start this one with another COMPLAINTS_DATA_DIR.")
    http.start()
    smtp = start_smtp(runtime, settings.host, settings.smtp_port)
    settings.smtp_port = int(smtp.port)
    print(banner(settings, runtime, time.monotonic() - started), flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    while not stop.wait(SAVE_EVERY_S):  # a crash loses at most this much
        prune_threads()
        runtime.save(only_if_changed=True)
    smtp.stop()
    http.stop()
    runtime.stop()
    print(f"Stopped; the data is kept in {settings.data_dir.resolve()} (complaints reset empties it).", flush=True)


def banner(settings: LocalSettings, runtime: Any, seconds: float) -> str:
    """What ``complaints run`` prints at start: where everything is, and commands to try that
    are true today (this month, these ports, this data folder)."""
    defaults = LocalSettings.model_fields
    changed = [f"COMPLAINTS_{name.upper()}={getattr(settings, name)}" for name in ("http_port", "smtp_port", "data_dir")
               if getattr(settings, name) != defaults[name].default]
    same = f"\n  export {' '.join(changed)}      (the commands below need what this stack got)" if changed else ""
    restored = runtime.data is not None and bool(runtime.data.restored_cases)
    data = (f"{settings.data_dir.resolve()} — {runtime.data.restored_cases} case(s) kept, "
            f"{len(runtime.restarted)} under way again" if restored else f"{settings.data_dir.resolve()}")
    now = runtime.clock.now()
    cli = ".venv/bin/complaints"
    return f"""
Complaint handling — local stack (demo tenant: Aurora Motors, 5 dealers), started in {seconds:.1f} s
  clock       {runtime.clock.mode} · now {now:%Y-%m-%d %H:%M} UTC   {settings.base_url}/_local/clock
  data        {data}
  outbox      {settings.base_url}/_local/mail        (every mail the system sent, with its links)
  console     {settings.base_url}/console            (sign in as cr.center@aurora-motors.example)
  SMTP        {settings.host}:{settings.smtp_port}   (complaints@aurora-motors.example, sh001@complaints.aurora-motors.example, ...)
  HTTP        {settings.base_url}   (link pages /a/..., staff API /api/..., tools /_local/...)

Try it, in another terminal:{same}
  {cli} send tests/data/emails/p01_brake_failure_sh001.eml
      prints the new case's number and its outbox page: click the links there as the dealer,
      the managers and the customer
  {cli} cases                        every case, with its number and phase
  {cli} case <case number>           one case as staff see it
  {cli} clock --advance-hours 72     move time on (deadlines, the survey)
  {cli} report --month {now:%Y-%m} --out report.html
Ctrl-C stops; the data stays for the next start ({cli} reset empties it)."""


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


def cmd_cases(settings: LocalSettings, args: argparse.Namespace) -> None:
    token = _http(settings, "POST", "/_local/token", json.dumps({"email": args.as_}).encode(),
                  {"Content-Type": "application/json"})["token"]
    query = f"?phase={args.phase}" if args.phase else ""
    answer = _http(settings, "GET", f"/api/cases{query}", headers={"Authorization": f"Bearer {token}"})
    cases = answer.get("cases", []) if isinstance(answer, dict) else answer
    for c in cases:
        due = f" · next due {c['next_due_at']}" if c.get("next_due_at") else ""
        print(f"{c['case_no']}  {c['phase']:<16} {c.get('dealer') or 'HQ':<6} {c.get('deadline_state', '')}{due}")
    if not cases:
        print("No cases yet: complaints send tests/data/emails/p01_brake_failure_sh001.eml")


def cmd_reset(settings: LocalSettings, args: argparse.Namespace) -> None:
    from .persistence import DataDir, DataDirInUseError

    data = DataDir(settings.data_dir)
    where = settings.data_dir.resolve()
    if not settings.data_dir.exists():
        print(f"{where}: nothing kept there.")
        return
    if not args.yes:
        answer = input(f"Delete every case, mail and report kept in {where}? [y/N] ")
        if answer.strip().lower() not in ("y", "yes"):
            print("Nothing deleted.")
            return
    try:
        left = data.reset()
    except DataDirInUseError as exc:
        sys.exit(str(exc))
    print(f"{where}: emptied." + (f" Not ours, left in place: {', '.join(p.name for p in left)}" if left else ""))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="complaints", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start the local stack")
    run.add_argument("--clock", choices=["real", "manual", "warp"])
    reset = sub.add_parser("reset", help="empty the data folder (COMPLAINTS_DATA_DIR)")
    reset.add_argument("--yes", action="store_true", help="do not ask")
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
    cases = sub.add_parser("cases", help="list the cases, about to breach first")
    cases.add_argument("--phase", help="a phase, or open (every phase but closed)")
    cases.add_argument("--as", dest="as_", default="cr.center@aurora-motors.example")
    cli_reports.add_parser(sub)
    classify = sub.add_parser("classify", help="classify .eml files offline and show why (no stack, no AWS)")
    classify.add_argument("files", nargs="+")
    classify.add_argument("--explain", action="store_true", help="the evidence and the reasons behind each decision")
    classify.add_argument("--rules", help="a brand's rules overlay (JSON, the shape of policy.classification.rules)")
    classify.add_argument("--json", action="store_true", help="one JSON object per mail")
    cli_corrections.add_parser(sub)
    args = parser.parse_args(argv)
    settings = LocalSettings()
    {"run": cmd_run, "reset": cmd_reset, "send": cmd_send, "outbox": cmd_outbox, "clock": cmd_clock,
     "case": cmd_case, "cases": cmd_cases, "report": cli_reports.cmd_report,
     "corrections": cli_corrections.cmd_corrections, "classify": cmd_classify}[args.command](settings, args)


if __name__ == "__main__":
    main()
