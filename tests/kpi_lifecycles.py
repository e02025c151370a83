"""Realistic lifecycles for the KPI tests, through the domain services as the state machine calls
them (enter, open the task, timers at their deadlines, the decision, record), on any store: the
in-memory fake or DynamoDB on moto. A seeded mix covers every path the KPIs count: on time and
late, plans revised, declined and accepted, surveys rated high (opinions), low (a follow-up) and
never answered, extensions, corrections, dealers assigned from the triage queue, accountability
after closure, cases parked, and cases still open (some overdue)."""

from __future__ import annotations

import calendar
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from shared.complaints.accountability import AccountabilityForm, AccountabilityService
from shared.complaints.casework import Casework, ClassificationCorrection
from shared.complaints.clock import FixedClock
from shared.complaints.deadlines import cycle_milestones, meet, step_schedule
from shared.complaints.lifecycle import Lifecycle
from shared.complaints.links import LinkService
from shared.complaints.models import Case, Classification, Customer, Step, VehicleRef
from shared.complaints.notifications import Notifier
from shared.complaints.ports import CaseStore
from shared.complaints.tenant import Tenant
from tests.fakes import MemoryMailer, MemoryWorkflow

DEALERS = ("SH001", "BJ002", "GZ003", "CD004", "HZ005")
VARIANTS = ("happy", "happy", "happy", "late", "revise", "unrated", "follow_up", "open", "overdue_open",
            "extension", "attention", "triage", "low_final")
BRAND_CR = "cr.center@aurora-motors.example"


@dataclass
class World:
    store: CaseStore
    clock: FixedClock
    lifecycle: Lifecycle
    mailer: MemoryMailer

    @property
    def tenant(self) -> Tenant:
        return self.store.get_tenant("aurora")


def world_on(store: CaseStore, at: datetime) -> World:
    clock = FixedClock(at)
    mailer = MemoryMailer()
    links = LinkService(store, clock, "k" * 32, "https://complaints.example")
    lifecycle = Lifecycle(store, MemoryWorkflow(), clock, links, Notifier(store, mailer, clock))
    return World(store, clock, lifecycle, mailer)


class Driver:
    def __init__(self, world: World, seed: int = 7) -> None:
        self.w = world
        self.rng = random.Random(seed)
        self.numbers: dict[str, int] = {}
        self.variants: dict[str, str] = {}

    # ----- registration ------------------------------------------------------------------------
    def register(self, dealer: str | None, received: datetime, *, severity: str = "general",
                 category: str = "service", channel: str = "email", repeat_of: str | None = None,
                 model: str | None = None, reasons: list[str] | None = None) -> Case:
        tenant = self.w.tenant
        segment = dealer or "HQ"
        month = received.strftime("%Y%m")
        self.numbers[f"{segment}{month}"] = self.numbers.get(f"{segment}{month}", 0) + 1
        no = f"AUR-{segment}-{month}-{self.numbers[f'{segment}{month}']:05d}"
        case = Case(case_no=no, brand="aurora", dealer=dealer, region=tenant.dealer(dealer).region if dealer else None,
                    channel=channel, phase="first_contact", received_at=received, subject="异响", description="仪表台异响",
                    language="zh", customer=Customer(name="刘伟", email=f"c{len(self.variants)}@mail.example",
                                                     phone="13800138000"),
                    vehicle=VehicleRef(vin="LAUR0A1B2C3000001", model=model, plate="沪A12345"),
                    classification=Classification(category=category, severity=severity,
                                                  safety=severity == "critical", media_or_regulator=False,
                                                  repeat_of=repeat_of, reasons=reasons or []))
        case.milestones = cycle_milestones(case, received, tenant.policy_for(dealer), tenant.calendar_for(dealer))
        meet(case, "acknowledgement", received + timedelta(seconds=5))  # sent as the case is registered
        self.w.clock.set(received)
        return self.w.store.create_case(case)

    # ----- one human step, as the state machine runs it ----------------------------------------------
    def act(self, no: str, step: Step, form: dict[str, Any], enter_at: datetime, decide_at: datetime,
            timers: tuple[datetime, ...] = ()) -> str:
        lc, store = self.w.lifecycle, self.w.store
        self.w.clock.set(enter_at)
        lc.enter(no, step, f"{step}@{enter_at.isoformat()}")
        timer = store.get_case(no).step_timer
        assert timer is not None
        lc.open_task(no, step, f"token-{timer.key}")
        for at in timers:
            self.w.clock.set(at)
            lc.timer(no, step)
        self.w.clock.set(decide_at)
        task = store.get_task(no, timer.key)
        assert task is not None
        store.decide_task(no, timer.key, {"outcome": "done", "form": form}, task.assignee, decide_at)
        return str(lc.record(no, step, timer.key)["next"])

    def due(self, no: str, milestone: str) -> datetime:
        m = self.w.store.get_case(no).milestone(milestone)
        assert m is not None
        return m.due_at

    # ----- whole lifecycles -----------------------------------------------------------------------
    def run(self, no: str, variant: str) -> None:
        """Drive the case from registration through ``variant``'s path."""
        self.variants[no] = variant
        lc, rng = self.w.lifecycle, self.rng
        t = self.w.store.get_case(no).received_at
        self.w.clock.set(t)
        lc.triage(no)
        if variant == "attention":
            self.w.clock.set(t + timedelta(minutes=10))
            lc.needs_attention(no, "TransientError", "test: DynamoDB throttled three times")
            return
        h = lambda hours: t + timedelta(hours=hours)  # noqa: E731 - read as "t + hours"
        if variant == "late":  # first contact after its hour: warned, then escalated
            due = self.due(no, "first_contact")
            nxt = self.act(no, "first_contact", {"notes": "called back late"}, h(0.01), due + timedelta(minutes=40),
                           timers=(due - timedelta(minutes=15), due + timedelta(minutes=1)))
        else:
            form = {"notes": "called the customer", **({"dealer": "GZ003"} if variant == "triage" else {})}
            nxt = self.act(no, "first_contact", form, h(0.01), h(0.4))
        assert nxt == "investigation"
        if variant == "open":
            self.w.clock.set(h(0.5))
            lc.enter(no, "investigation", "inv-open")
            return
        if variant == "overdue_open":  # investigation entered, its 24-hour feedback deadline passed
            self.w.clock.set(h(0.5))
            lc.enter(no, "investigation", "inv-overdue")
            self.w.clock.set(self.due(no, "preliminary_feedback") + timedelta(minutes=5))
            lc.timer(no, "investigation")
            return
        decide = h(3 + rng.random() * 10)
        if variant == "extension":  # the customer agrees to two more days for the feedback
            self.w.clock.set(h(0.6))
            lc.enter(no, "investigation", "inv-ext")
            timer = self.w.store.get_case(no).step_timer
            assert timer is not None
            lc.open_task(no, "investigation", f"token-{timer.key}")
            self.w.clock.set(h(1))
            due = self.due(no, "preliminary_feedback")
            ext = lc.request_extension(no, "cs.sh001@dealers.example", "waiting for the parts report",
                                       due + timedelta(days=2))
            lc.answer_extension(no, ext.id, "accept", "customer")
            decide = due + timedelta(hours=20)
            self.w.clock.set(decide)
            self.w.store.decide_task(no, timer.key, {"outcome": "done", "form": self._investigation()},
                                     timer.assignee, decide)
            lc.record(no, "investigation", timer.key)
        else:
            self.act(no, "investigation", self._investigation(), h(0.6), decide)
        t = decide
        self._resolve(no, t, revise=variant == "revise")
        t = self.w.clock.now()
        closed = self._close(no, t)
        if variant == "unrated":
            self.w.clock.set(closed + timedelta(days=3))
            lc.enter(no, "survey", "survey-unrated")
            timer = self.w.store.get_case(no).step_timer
            assert timer is not None
            lc.open_task(no, "survey", f"token-{timer.key}")
            tenant, case = self.w.tenant, self.w.store.get_case(no)
            schedule = step_schedule(case, "survey", timer.opened_at, tenant.policy_for(case.dealer),
                                     tenant.calendar_for(case.dealer))
            assert schedule.expires_at is not None
            self.w.clock.set(schedule.due_at + timedelta(minutes=1))
            lc.timer(no, "survey")  # the reminder
            self.w.clock.set(schedule.expires_at + timedelta(minutes=1))
            assert lc.timer(no, "survey")["expired"]
            lc.survey_unrated(no)
            return
        score = {"follow_up": 50, "low_final": 72}.get(variant, rng.choice((100, 95, 90, 85, 75)))
        comment = rng.choice(("处理及时，王先生非常满意，电话13912345678随时联系", "Quick and friendly, thank you", ""))
        nxt = self.act(no, "survey", {"score": score, "comment": comment}, closed + timedelta(days=3),
                       closed + timedelta(days=4))
        if variant == "follow_up":
            assert nxt == "follow_up", nxt
            at = closed + timedelta(days=4, hours=1)
            self.act(no, "follow_up", {"notes": "called about the score"}, at, at + timedelta(hours=2))
            self.act(no, "investigation", self._investigation(), at + timedelta(hours=3), at + timedelta(hours=5))
            self._resolve(no, at + timedelta(hours=5), revise=False)
            closed = self._close(no, self.w.clock.now())
            self.act(no, "survey", {"score": 95, "comment": "second time right"}, closed + timedelta(days=3),
                     closed + timedelta(days=3, hours=2))
        case = self.w.store.get_case(no)
        if case.dealer and rng.random() < 0.4:  # accountability recorded after closure
            self.w.clock.set(self.w.clock.now() + timedelta(hours=2))
            member = self.w.tenant.staff_member(BRAND_CR)
            assert member is not None
            responsibility = rng.choice(("employee", "management", "system"))
            AccountabilityService(lc, "https://complaints.example").record(no, AccountabilityForm(
                responsibility=responsibility, measure="fine" if responsibility == "employee" else "process_change",
                fine=Decimal("500") if responsibility == "employee" else Decimal(0)), member)

    def _investigation(self) -> dict[str, Any]:
        return {"findings": "inspected the car", "root_cause": self.rng.choice(("product", "service", "communication")),
                "responsibility": "none", "preliminary_feedback": "we found the cause"}

    def _resolve(self, no: str, t: datetime, *, revise: bool) -> None:
        """Plan, approvals (a rejection and a decline when revising), the customer's yes, carried out."""
        value = self.rng.choice(("0", "800", "1500", "5000", "30000"))
        plan = {"measures": "repair free of charge",
                "compensation": [] if value == "0" else [{"kind": "free_service", "value": value}]}
        nxt = self.act(no, "plan", plan, t + timedelta(hours=0.1), t + timedelta(hours=1))
        t += timedelta(hours=1)
        rejected = declined = False
        while nxt != "carry_out":
            t += timedelta(hours=1)
            if nxt == "plan":
                nxt = self.act(no, "plan", plan, t, t + timedelta(minutes=30))
            elif nxt == "approval":
                decision = {"decision": "reject", "comment": "too generous"} if revise and not rejected else \
                    {"decision": "approve"}
                rejected = rejected or decision["decision"] == "reject"
                nxt = self.act(no, "approval", decision, t, t + timedelta(minutes=30))
            elif nxt == "customer_reply":
                answer = {"decision": "decline", "reason": "not enough"} if revise and not declined else \
                    {"decision": "accept"}
                declined = declined or answer["decision"] == "decline"
                nxt = self.act(no, "customer_reply", answer, t, t + timedelta(hours=2))
            else:
                raise AssertionError(nxt)
        self.act(no, "carry_out", {"notes": "repaired"}, t + timedelta(hours=3), t + timedelta(hours=20))

    def _close(self, no: str, t: datetime) -> datetime:
        closed = t + timedelta(minutes=1)
        self.w.clock.set(closed)
        self.w.lifecycle.close(no)
        return closed

    # ----- a mix ------------------------------------------------------------------------------------
    def mix(self, count: int, start: datetime, days: int) -> list[str]:
        """``count`` cases received over ``days`` from ``start`` (some just either side of a month's
        end in Shanghai), each on a path of the mix."""
        rng, numbers = self.rng, list[str]()
        for i in range(count):
            variant = VARIANTS[i % len(VARIANTS)] if i < len(VARIANTS) else rng.choice(VARIANTS)
            received = start + timedelta(minutes=rng.randrange(days * 24 * 60))
            if i % 9 in (4, 5):  # 23:50 on a month's last day in Shanghai, or 00:10 on the 1st (16:10 UTC)
                last = calendar.monthrange(received.year, received.month)[1]
                received = received.replace(day=last, hour=15 if i % 9 == 4 else 16, minute=50 if i % 9 == 4 else 10)
            severity = rng.choice(("general", "general", "major", "critical"))
            reasons = {"critical": ["safety (brakes): 刹车失灵", "severity critical: safety risk"],
                       "major": ["compensation: 要求赔偿", "severity major: demands refund, replacement or compensation"],
                       "general": []}[severity]
            case = self.register(None if variant == "triage" else rng.choice(DEALERS), received, severity=severity,
                                 category=rng.choice(("product_quality", "service", "price", "other")),
                                 channel=rng.choice(("email", "phone", "hotline_400", "walk_in")),
                                 repeat_of=numbers[-1] if numbers and rng.random() < 0.15 else None,
                                 model=rng.choice(("Aurora S5", "Aurora X7", None)), reasons=reasons)
            self.run(case.case_no, variant)
            if rng.random() < 0.12:  # staff correct how it was classified
                self.w.clock.set(self.w.clock.now() + timedelta(minutes=5))
                Casework(self.w.lifecycle).correct_classification(
                    case.case_no, ClassificationCorrection(category="price", reason="it is about the quote"), BRAND_CR)
            numbers.append(case.case_no)
        return numbers
