"""What the staff API and the console do to a case on behalf of their caller.

The caller (``shared/runtime/callers.py``) carries a ``Viewer`` (views.py); every read of a case goes through the store's
scoped methods with it (``case_for``, ``cases_for``), so another dealer's, region's or
brand's case answers 404 exactly like a case that does not exist."""

from __future__ import annotations

import re
from typing import Any, TypeVar

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter
from aws_lambda_powertools.event_handler.exceptions import BadRequestError, ForbiddenError, NotFoundError, ServiceError
from pydantic import BaseModel, ValidationError

from shared.complaints import corrections, manual_intake, notes
from shared.complaints.accountability import AccountabilityForm, AccountabilityService, DoneForm, may_act
from shared.complaints.bodies import BodyTooLargeError, MalformedBodyError, parse_body
from shared.complaints.casework import Casework, ClassificationCorrection, DealerAssignment
from shared.complaints.errors import CaseNotFoundError, InvalidInputError, InvalidTransitionError
from shared.complaints.intake import IntakeResult
from shared.complaints.models import Case, MailMessage
from shared.complaints.review import QUEUE_LIMIT, CategoryReviewForm, ReviewEntry, SafetyReviewForm
from shared.runtime.callers import Caller
from shared.runtime.settings import settings
from shared.runtime.wiring import services

M = TypeVar("M", bound=BaseModel)


class FieldErrors(Exception):
    """Fields that do not validate: 400 with what is wrong with each."""

    def __init__(self, fields: dict[str, str]) -> None:
        super().__init__("invalid fields")
        self.fields = fields


def field_errors(exc: ValidationError) -> dict[str, str]:
    return {".".join(str(p) for p in e["loc"]) or "_": e["msg"].removeprefix("Value error, ") for e in exc.errors()}


def validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise FieldErrors(field_errors(exc)) from exc


def body(router: BaseRouter) -> tuple[dict[str, Any], bool]:
    """The request's fields, and whether they came from a browser form."""
    event = router.current_event
    try:
        raw = event.decoded_body or ""
    except UnicodeDecodeError as exc:  # API Gateway passes bytes that are not UTF-8 as base64
        raise BadRequestError("the body must be UTF-8 text") from exc
    try:
        return parse_body(raw, (event.headers or {}).get("content-type", ""), settings().body_limits,
                          form_by_default=False)
    except BodyTooLargeError as exc:
        raise ServiceError(413, "body too large") from exc
    except MalformedBodyError as exc:
        raise BadRequestError(str(exc)) from exc


# ----- what staff do to a case (the API and the console alike) --------------------------------------
def visible_case(caller: Caller, case_no: str) -> Case:
    try:
        return services().store.case_for(caller.viewer, case_no)
    except CaseNotFoundError as exc:
        raise NotFoundError(case_no) from exc  # not 403: nobody learns that another tenant's case exists


def correct_classification(caller: Caller, case_no: str, data: dict[str, Any]) -> Case:
    visible_case(caller, case_no)
    correction = validated(ClassificationCorrection, data)
    try:
        return Casework(services().lifecycle).correct_classification(case_no, correction, caller.member.email)
    except InvalidInputError as exc:
        raise FieldErrors(exc.fields) from exc


def _brand_cr_only(caller: Caller, what: str) -> None:
    if caller.member.role != "brand_cr":
        raise ForbiddenError(f"only the brand's customer-relations center {what}")


def review_safety(caller: Caller, case_no: str, data: dict[str, Any]) -> Case:
    """Confirm or dismiss a possible safety risk (review.py)."""
    visible_case(caller, case_no)
    _brand_cr_only(caller, "confirms or dismisses a possible safety risk")
    form = validated(SafetyReviewForm, data)
    try:
        return Casework(services().lifecycle).review_safety(case_no, form, caller.member.email)
    except InvalidInputError as exc:
        raise FieldErrors(exc.fields) from exc
    except InvalidTransitionError as exc:
        raise ServiceError(409, str(exc)) from exc


def review_category(caller: Caller, case_no: str, data: dict[str, Any]) -> Case:
    """Set or confirm the category from the review queue."""
    visible_case(caller, case_no)
    _brand_cr_only(caller, "works the review queue")
    form = validated(CategoryReviewForm, data)
    try:
        return Casework(services().lifecycle).review_category(case_no, form, caller.member.email)
    except InvalidInputError as exc:
        raise FieldErrors(exc.fields) from exc


def review_queue(caller: Caller) -> list[ReviewEntry]:
    _brand_cr_only(caller, "works the review queue")
    return services().store.review_queue(caller.tenant.brand.id, limit=QUEUE_LIMIT)


def labelled_examples(caller: Caller, since: str | None) -> list[dict[str, Any]]:
    """The brand's corrected and reviewed cases as labelled examples (corrections.py)."""
    _brand_cr_only(caller, "exports corrections")
    if since and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", since):
        raise FieldErrors({"since": "a month, YYYY-MM"})
    store, found = services().store, []
    for case_no in store.corrected_cases(caller.tenant.brand.id, (since or "").replace("-", "")):
        try:
            case = store.case_for(caller.viewer, case_no)
        except CaseNotFoundError:
            continue  # no longer there (erased on request, policy.md §14): nothing to export
        example = corrections.labelled_example(case, store.events(case_no), caller.tenant)
        if example is not None:
            found.append(example)
    return found


def example_mail(caller: Caller, case_no: str) -> bytes:
    """The mail of a labelled example: the raw mail as received, or one made of the case's text."""
    _brand_cr_only(caller, "exports corrections")
    case = visible_case(caller, case_no)
    if case.raw_mail_key:
        return services().blobs.get(case.raw_mail_key)
    return corrections.synthetic_mail(case, caller.tenant)


def assign_dealer(caller: Caller, case_no: str, data: dict[str, Any]) -> Case:
    visible_case(caller, case_no)
    if caller.member.role != "brand_cr":
        raise ForbiddenError("only the brand's customer-relations center assigns dealers")
    assignment = validated(DealerAssignment, data)
    try:
        return Casework(services().lifecycle).assign_dealer(case_no, assignment.dealer, caller.member.email)
    except InvalidInputError as exc:
        raise FieldErrors(exc.fields) from exc
    except InvalidTransitionError as exc:
        raise ServiceError(409, str(exc)) from exc


def resume(caller: Caller, case_no: str) -> str:
    """A case parked in needs_attention (alerted to the brand CR center) goes on: a new
    execution re-enters the step it stood in. Brand CR only: it decided the case was fixed."""
    visible_case(caller, case_no)
    if caller.member.role != "brand_cr":
        raise ForbiddenError("only the brand's customer-relations center resumes a parked case")
    try:
        return services().lifecycle.resume(case_no, caller.member.email)
    except InvalidTransitionError as exc:
        raise ServiceError(409, str(exc)) from exc


def promote_note(caller: Caller, case_no: str, note_id: str) -> MailMessage:
    """Staff who see the case take a third party's note as the customer's mail (recorded)."""
    visible_case(caller, case_no)
    note = notes.promote(services().store, services().clock, case_no, note_id, caller.member.email)
    if note is None:
        raise NotFoundError("no such note on this case")
    return note


def accountability_service() -> AccountabilityService:
    return AccountabilityService(services().lifecycle, settings().public_base_url)


def record_accountability(caller: Caller, case_no: str, data: dict[str, Any]) -> Case:
    case = visible_case(caller, case_no)
    if not may_act(caller.member, case):
        raise ForbiddenError("the dealer's general manager or the brand's customer-relations center records this")
    form = validated(AccountabilityForm, data)
    try:
        return accountability_service().record(case_no, form, caller.member)
    except InvalidTransitionError as exc:
        raise ServiceError(409, str(exc)) from exc


def accountability_done(caller: Caller, case_no: str, data: dict[str, Any]) -> Case:
    case = visible_case(caller, case_no)
    if not may_act(caller.member, case):
        raise ForbiddenError("the dealer's general manager or the brand's customer-relations center marks this")
    form = validated(DoneForm, data)
    try:
        return accountability_service().done(case_no, caller.member, form)
    except InvalidTransitionError as exc:
        raise ServiceError(409, str(exc)) from exc


def register_complaint(caller: Caller, data: dict[str, Any]) -> IntakeResult:
    entered = validated(manual_intake.ManualComplaint, data)
    try:
        return manual_intake.register(services().intake, caller.tenant, entered, caller.member)
    except InvalidInputError as exc:
        raise FieldErrors(exc.fields) from exc
