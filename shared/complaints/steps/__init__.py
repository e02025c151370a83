"""The human steps of a complaint, in order: the one table the lifecycle's state machine is
generated from (``python -m infra.asl`` writes ``stepfunctions/complaint_lifecycle.asl.json``).

A step says what it is for and where a case goes once its decision is recorded: the route
the Record task returns (``{"next": ...}``) picks one of ``routes``; anything else goes to
``then``. Targets are other steps, or ``close`` (close the case, then the survey after the
policy's delay) and ``closed`` (the execution ends).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ..models import Step

Target = Step | Literal["close", "closed"]


@dataclass(frozen=True)
class StepSpec:
    name: Step
    purpose: str  # what the step is for, as the ASL's comment on entering it says
    then: Target  # where a recorded decision leads by default
    routes: tuple[Step, ...] = ()  # other steps a recorded decision may lead to (its "next")
    after_close: bool = False  # entered after the case closed and the survey delay passed
    unanswered: Literal["closed"] | None = None  # a timer that finds the step expired ends the case
    unanswered_note: str = ""

    @property
    def words(self) -> str:
        return self.name.replace("_", " ")


STEPS: tuple[StepSpec, ...] = (
    StepSpec("first_contact", "First contact with the customer (1 hour)", then="investigation"),
    StepSpec("investigation", "Investigation and preliminary feedback (24 hours)", then="plan"),
    StepSpec("plan", "Resolution plan with compensation", then="approval"),
    StepSpec("approval", "Approval by the managers the plan's value requires, one level at a time",
             then="customer_reply", routes=("approval", "plan")),
    StepSpec("customer_reply", "The customer accepts or declines the plan", then="carry_out", routes=("plan",)),
    StepSpec("carry_out", "The dealer carries out the plan", then="close"),
    StepSpec("survey", "Satisfaction survey", then="closed", routes=("follow_up",), after_close=True,
             unanswered="closed", unanswered_note="No answer after one reminder: closed without a rating"),
    StepSpec("follow_up", "Level-II follow-up of a poor survey score", then="investigation"),
)

FIRST: Step = STEPS[0].name


def spec(name: str) -> StepSpec:
    for step in STEPS:
        if step.name == name:
            return step
    raise KeyError(name)
