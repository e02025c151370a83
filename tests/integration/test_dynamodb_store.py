"""The DynamoDB adapter on moto: conditional writes, atomic counters, no Scan."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from infra.local.runtime import LocalRuntime
from shared.adapters.dynamodb import DynamoCaseStore
from shared.complaints.errors import ConflictError, LinkGoneError, TaskNotOpenError
from shared.complaints.models import Case, Classification, Customer, HumanTask, Link
from shared.complaints.tenant import TRIAGE
from shared.runtime import wiring

T0 = datetime(2026, 11, 23, 2, 0, tzinfo=UTC)


@pytest.fixture
def store(manual_runtime: LocalRuntime) -> DynamoCaseStore:
    return wiring.case_store()  # tests/conftest.py makes any Scan fail


def a_case(no: str, dealer: str | None = "SH001", email: str = "a@mail.example") -> Case:
    return Case(case_no=no, brand="aurora", dealer=dealer, channel="email", phase="first_contact", received_at=T0,
                subject="s", description="d", language="zh", customer=Customer(email=email),
                classification=Classification(category="service", severity="general", safety=False,
                                              media_or_regulator=False))


def test_case_numbers_are_gap_free_under_concurrency(store: DynamoCaseStore) -> None:
    # Also the test of moto_patches.install_dynamodb_lock: without it, moto loses concurrent ADDs.
    with ThreadPoolExecutor(8) as pool:
        numbers = list(pool.map(lambda _: store.next_case_sequence("aurora", "SH001", "202611"), range(200)))
    assert sorted(numbers) == list(range(1, 201))
    assert store.next_case_sequence("aurora", "SH001", "202612") == 1
    assert store.next_case_sequence("aurora", TRIAGE, "202611") == 1


def test_case_writes_are_conditional(store: DynamoCaseStore) -> None:
    created = store.create_case(a_case("AUR-SH001-202611-00001"))
    with pytest.raises(ConflictError):
        store.create_case(a_case("AUR-SH001-202611-00001"))
    first = store.get_case(created.case_no)
    second = store.get_case(created.case_no)
    first.subject = "changed by one"
    store.save_case(first)
    second.subject = "changed by another"
    with pytest.raises(ConflictError):
        store.save_case(second)
    assert store.get_case(created.case_no).subject == "changed by one"


def test_lists_by_dealer_and_phase_through_the_index(store: DynamoCaseStore) -> None:
    store.create_case(a_case("AUR-SH001-202611-00001"))
    store.create_case(a_case("AUR-BJ002-202611-00001", "BJ002"))
    store.create_case(a_case("AUR-HQ-202611-00001", None))
    assert [c.case_no for c in store.list_cases("aurora", dealer="SH001", phase="first_contact")] == ["AUR-SH001-202611-00001"]
    assert store.list_cases("aurora", dealer="SH001", phase="closed") == []
    assert len(store.list_cases("aurora")) == 3
    assert [c.case_no for c in store.list_cases("aurora", dealer=TRIAGE)] == ["AUR-HQ-202611-00001"]


def test_recent_cases_of_a_customer_for_repeat_detection(store: DynamoCaseStore) -> None:
    store.create_case(a_case("AUR-SH001-202611-00001", email="Same@Mail.example"))
    found = store.recent_cases_of("aurora", customer_email="same@mail.example", vin=None, since=T0 - timedelta(days=90))
    assert [c.case_no for c in found] == ["AUR-SH001-202611-00001"]
    assert store.recent_cases_of("aurora", customer_email="same@mail.example", vin=None, since=T0 + timedelta(days=1)) == []


def test_task_token_rearm_and_single_decision(store: DynamoCaseStore) -> None:
    task = HumanTask(case_no="C1", step="approval", key="approval-3", token="t1", opened_at=T0, assignee="gm@x")
    _, created = store.arm_task(task)
    assert created
    rearmed, created = store.arm_task(task.model_copy(update={"token": "t2"}))
    assert not created and rearmed.token == "t2"

    def decide(who: str) -> str:
        try:
            return store.decide_task("C1", "approval-3", {"outcome": "approve"}, who, T0).token
        except TaskNotOpenError:
            return "lost"

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(decide, [f"p{i}" for i in range(6)]))
    assert results.count("t2") == 1 and results.count("lost") == 5
    after, created = store.arm_task(task.model_copy(update={"token": "t3"}))
    assert after.status == "decided" and after.token == "t2"  # a decided task keeps its decision


def test_link_is_claimed_once(store: DynamoCaseStore) -> None:
    store.put_link(Link(link_hash="h1", case_no="C1", step="approval", task_key="approval-3", recipient="gm@x",
                        created_at=T0, expires_at=T0 + timedelta(days=1), form_secret="s"))

    def claim(who: str) -> str:
        try:
            store.claim_link("h1", who, T0)
            return "won"
        except LinkGoneError:
            return "lost"

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(claim, [f"p{i}" for i in range(6)]))
    assert results.count("won") == 1


def test_inbound_mail_is_claimed_once(store: DynamoCaseStore) -> None:
    assert store.claim_inbound("ses-1", "raw/ses-1", T0) is None
    again = store.claim_inbound("ses-1", "raw/ses-1", T0)
    assert again is not None and again.status == "processing"
    assert store.claim_message_id("aurora", "<a@b>", "ses-1") is None
    assert store.claim_message_id("aurora", "<a@b>", "ses-1") is None  # the same delivery retried
    assert store.claim_message_id("aurora", "<a@b>", "ses-2") == "ses-1"


def test_accountability_tasks_by_due_date_and_state(store: DynamoCaseStore) -> None:
    from shared.complaints.ports import AccountabilityTask

    t0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)

    def task(case_no: str, due_days: int, done: bool = False, dealer: str = "SH001",
             region: str = "east") -> AccountabilityTask:
        return AccountabilityTask(brand="aurora", case_no=case_no, dealer=dealer, region=region,
                                  responsibility="employee", measure="fine", fine="200", assignee="gm@x.example",
                                  recorded_at=t0, due_at=t0 + timedelta(days=due_days),
                                  done_at=t0 + timedelta(days=1) if done else None)

    store.put_accountability_task(task("A-1", 15))
    store.put_accountability_task(task("A-2", 30))
    store.put_accountability_task(task("A-3", 5, done=True))
    store.put_accountability_task(task("A-1", 20))  # re-recorded: replaces, never duplicates
    overdue = store.accountability_tasks("aurora", due_before=t0 + timedelta(days=25))
    assert [t.case_no for t in overdue] == ["A-1"]
    assert overdue[0].due_at == t0 + timedelta(days=20)
    everything = store.accountability_tasks("aurora", open_only=False)
    assert [t.case_no for t in everything] == ["A-3", "A-1", "A-2"]
    assert store.accountability_tasks("other") == []
    # A dealer's and a region's own tasks, from their index partitions (not the brand's list filtered).
    store.put_accountability_task(task("B-1", 10, dealer="BJ002", region="north"))
    store.put_accountability_task(task("B-1", 12, dealer="BJ002", region="north"))  # moved: the old entry goes
    assert [t.case_no for t in store.accountability_tasks("aurora", scope="dealer#east#SH001")] == ["A-1", "A-2"]
    assert [t.case_no for t in store.accountability_tasks("aurora", scope="dealer#north#BJ002")] == ["B-1"]
    assert [t.case_no for t in store.accountability_tasks("aurora", scope="region#north", limit=5)] == ["B-1"]
    assert [t.case_no for t in store.accountability_tasks("aurora", scope="region#east", open_only=False,
                                                          due_before=t0 + timedelta(days=25))] == ["A-3", "A-1"]
    assert store.accountability_tasks("aurora", scope="dealer#south#GZ003") == []
