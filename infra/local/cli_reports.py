"""``complaints report``: KPI reports from the running local stack, as staff get them.

    complaints report --month 2026-11 [--dealer SH001 | --region east] [--format html|csv|json] [--out FILE]
    complaints report --quarter 2026-Q4 | --year 2026 ...     a quarter, a year
    complaints report --send --month 2026-11                  mail the month's reports (what the 1st's schedule does)
    complaints report --rebuild --month 2026-11               recompute the month's KPI aggregates from its cases

A report goes through ``GET /api/reports/{period}`` with a token for ``--as`` (default: the brand CR
center), so a dealer's staff see only their dealer's (``--as cs.sh001@dealers.example``). ``--send``
and ``--rebuild`` invoke the ``reports`` function as EventBridge Scheduler (or an operator) would.
"""

from __future__ import annotations

import argparse
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from infra import catalog

from .settings import LocalSettings

DEFAULT_AS = "cr.center@aurora-motors.example"


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    report = sub.add_parser("report", help="a KPI report (HTML, CSV, JSON); --send mails the month's reports",
                            description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    period = report.add_mutually_exclusive_group(required=True)
    period.add_argument("--month", help="YYYY-MM")
    period.add_argument("--quarter", help="YYYY-Qn")
    period.add_argument("--year", help="YYYY")
    scope = report.add_mutually_exclusive_group()
    scope.add_argument("--dealer")
    scope.add_argument("--region")
    scope.add_argument("--brand", action="store_true", help="the brand's report (the default for the CR center)")
    report.add_argument("--format", choices=["html", "csv", "json"], default="html")
    report.add_argument("--out", type=Path, help="write to this file (default: standard output)")
    report.add_argument("--as", dest="as_", default=DEFAULT_AS, help="the staff member asking")
    report.add_argument("--lang", choices=["zh", "en"])
    action = report.add_mutually_exclusive_group()
    action.add_argument("--send", action="store_true", help="mail the month's reports to the brand, regions, dealers")
    action.add_argument("--rebuild", action="store_true", help="recompute the period's aggregates from its cases")


def _request(settings: LocalSettings, method: str, path: str, body: bytes | None = None,
             headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    req = urllib.request.Request(settings.base_url + path, data=body, method=method, headers=headers or {})  # noqa: S310 - our own http:// base URL
    try:
        with urllib.request.urlopen(req, timeout=300) as resp:  # noqa: S310
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except urllib.error.URLError as exc:
        sys.exit(f"The local stack is not running at {settings.base_url} ({exc.reason}). Start it with: make run")


def cmd_report(settings: LocalSettings, args: argparse.Namespace) -> None:
    period = args.month or args.quarter or args.year
    if args.send or args.rebuild:
        schedule = catalog.function("reports").schedule
        event = json.loads(schedule.payload) if schedule and args.send else {"action": "rebuild"}
        event |= {"month": period} if args.send else {"months": [period]}
        status, body = _request(settings, "POST", "/_local/invoke/reports", json.dumps(event).encode(),
                                {"Content-Type": "application/json"})
        print(json.dumps(json.loads(body or b"null"), indent=2, ensure_ascii=False))
        if status != 200:
            sys.exit(1)
        return
    status, body = _request(settings, "POST", "/_local/token", json.dumps({"email": args.as_}).encode(),
                            {"Content-Type": "application/json"})
    if status != 200:
        sys.exit(f"{args.as_} is not staff of the demo tenant")
    token = json.loads(body)["token"]
    query = {"format": args.format, **({"dealer": args.dealer} if args.dealer else {}),
             **({"region": args.region} if args.region else {}), **({"scope": "brand"} if args.brand else {}),
             **({"lang": args.lang} if args.lang else {})}
    status, body = _request(settings, "GET", f"/api/reports/{urllib.parse.quote(period)}?{urllib.parse.urlencode(query)}",
                            headers={"Authorization": f"Bearer {token}"})
    if status != 200:
        sys.exit(f"{status}: {body.decode('utf-8', 'replace')[:300]}")
    if args.out:
        args.out.write_bytes(body)
        print(f"{args.out} ({len(body):,} bytes)")
    else:
        sys.stdout.buffer.write(body)
