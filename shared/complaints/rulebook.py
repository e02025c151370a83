"""The classification rules as data (docs/classification.md): lexicons, weights and
thresholds in ``rules/*.toml``, shipped with the package, validated on load, and
extended per brand by an overlay in its policy (``policy.classification.rules``).

An overlay has the shape of the rule files: lists it gives are *added* to the shipped
ones, numbers replace them, and ``remove`` (same shape) takes shipped terms out:

    {"safety": {"hazards": {"brakes": {"signs": ["刹车发飘"]}}},
     "threats": {"kinds": {"regulator": ["汽车消费维权中心"]}},
     "weights": {"ask_factor": 2.0},
     "remove": {"threats": {"kinds": {"media": ["直播"]}}}}
"""

from __future__ import annotations

import json
import re
import tomllib
from functools import lru_cache
from importlib import resources
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from .models import Category

FILES = ("safety", "threats", "category", "engine")
CATEGORIES: tuple[Category, ...] = ("product_quality", "service", "price", "other")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _check_terms(terms: list[str]) -> list[str]:
    for term in terms:
        if term != term.lower():
            raise ValueError(f"terms are lower case (mail is folded before matching): {term!r}")
        try:
            re.compile(term)
        except re.error as exc:
            raise ValueError(f"not a valid pattern: {term!r} ({exc})") from exc
    return terms


Terms = list[str]


class HazardRules(_Strict):
    phrases: Terms = Field(default_factory=list)
    parts: Terms = Field(default_factory=list)
    signs: Terms = Field(default_factory=list)
    vague_signs: Terms = Field(default_factory=list)
    vague_phrases: Terms = Field(default_factory=list)  # say a possible hazard alone
    near: int = Field(default=12, ge=1, le=80)
    needs_context: bool = False
    # A safety net under the precise hazards: a component with any abnormal event is at most
    # a possible risk (to be confirmed), read only when no precise hazard was found, and no
    # defect of the car for the category.
    net: bool = False
    # Words between a part and its sign that make the sign another, minor thing's ("车门把手的漆
    # 掉了", "the button on the wheel is loose"); a net's part and sign must also share a clause.
    not_between: Terms = Field(default_factory=list)

    _terms = field_validator("phrases", "parts", "signs", "vague_signs", "vague_phrases", "not_between")(_check_terms)

    @model_validator(mode="after")
    def _something_to_find(self) -> HazardRules:
        if not (self.phrases or self.vague_phrases) and not (self.parts and (self.signs or self.vague_signs)):
            raise ValueError("a hazard needs phrases, or parts with signs")
        return self


class SafetyCues(_Strict):
    driving_context: Terms
    fear: Terms
    hedges: Terms
    no_danger: Terms
    elsewhere: Terms
    standstill: Terms = Field(default_factory=list)  # the car was not moving: a vague sign there is no risk

    _terms = field_validator("*")(_check_terms)


class SafetyRules(_Strict):
    hazards: dict[str, HazardRules]
    cues: SafetyCues


class ThreatKinds(_Strict):
    media: Terms
    regulator: Terms
    lawsuit: Terms

    _terms = field_validator("*")(_check_terms)


class ThreatCues(_Strict):
    ruled_out: Terms
    but: Terms
    reported: Terms
    adopted: Terms

    _terms = field_validator("*")(_check_terms)


class ThreatRules(_Strict):
    kinds: ThreatKinds
    cues: ThreatCues


class Evidence(_Strict):
    strong: Terms
    weak: Terms
    medium: Terms = Field(default_factory=list)

    _terms = field_validator("*")(_check_terms)


class Asks(_Strict):
    cues: Terms
    main: Terms = Field(default_factory=list)
    set_aside: Terms = Field(default_factory=list)

    _terms = field_validator("*")(_check_terms)


class CategoryRules(_Strict):
    product_quality: Evidence
    service: Evidence
    price: Evidence
    other: Evidence
    asks: Asks

    def of(self, category: Category) -> Evidence:
        evidence: Evidence = getattr(self, category)
        return evidence


class Reading(_Strict):
    negation: Terms
    gap_negation: Terms
    hypothetical: Terms
    resolved: Terms
    recurred: Terms
    reply_header: Terms
    forward_header: Terms
    own_reference: Terms

    _terms = field_validator("*")(_check_terms)


class DemandRules(_Strict):
    terms: Terms
    denied: Terms

    _terms = field_validator("*")(_check_terms)


class Weights(_Strict):
    category_strong: float = Field(gt=0)
    category_medium: float = Field(gt=0)
    category_weak: float = Field(gt=0)
    hazard_as_defect: float = Field(ge=0)
    subject_factor: float = Field(ge=1)
    ask_factor: float = Field(ge=1)
    main_factor: float = Field(ge=1)
    set_aside_factor: float = Field(ge=0, le=1)
    forwarder_factor: float = Field(ge=0, le=1)
    resolved_product_factor: float = Field(ge=0, le=1)
    tie_order: list[Category]
    safety_clear: float = Field(gt=0)
    safety_possible: float = Field(gt=0)
    context: float = Field(ge=0)
    fear: float = Field(ge=0)
    possible_safety_confidence: float = Field(gt=0, le=1)
    reported_threat_confidence: float = Field(gt=0, le=1)
    no_evidence_confidence: float = Field(gt=0, le=1)

    @field_validator("tie_order")
    @classmethod
    def _every_category_once(cls, order: list[Category]) -> list[Category]:
        if sorted(order) != sorted(CATEGORIES):
            raise ValueError(f"tie_order lists each of {', '.join(CATEGORIES)} once")
        return order


class Rulebook(_Strict):
    safety: SafetyRules
    threats: ThreatRules
    category: CategoryRules
    reading: Reading
    demand: DemandRules
    weights: Weights

    def terms(self) -> list[str]:
        """Every term of every lexicon (for checks and for the folding test)."""
        found: list[str] = []
        _collect(self.model_dump(), found)
        return found


def _collect(node: Any, found: list[str]) -> None:
    if isinstance(node, dict):
        for value in node.values():
            _collect(value, found)
    elif isinstance(node, list):
        found.extend(item for item in node if isinstance(item, str) and item not in CATEGORIES)


def shipped_document() -> dict[str, Any]:
    """The rule files as one document: safety, threats, category, then engine.toml's
    sections (reading, demand, weights) at the top level."""
    folder = resources.files(__package__).joinpath("rules")
    document: dict[str, Any] = {}
    for name in FILES:
        data = tomllib.loads(folder.joinpath(f"{name}.toml").read_text("utf-8"))
        if name == "engine":
            document.update(data)
        else:
            document[name] = data
    return document


def overlay(base: dict[str, Any], extra: dict[str, Any], *, remove: bool = False) -> dict[str, Any]:
    """Lists grow (or shrink, with ``remove``), tables merge, numbers and flags replace."""
    merged = dict(base)
    for key, value in extra.items():
        current = merged.get(key)
        if isinstance(value, dict) and isinstance(current, dict):
            merged[key] = overlay(current, value, remove=remove)
        elif isinstance(value, list) and isinstance(current, list) and key != "tie_order":
            merged[key] = [t for t in current if t not in value] if remove else current + [t for t in value if t not in current]
        elif remove:
            raise ValueError(f"remove takes terms out of lists; {key!r} is not one")
        else:
            merged[key] = value
    return merged


def build_rulebook(brand_overlay: dict[str, Any] | None = None) -> Rulebook:
    """The shipped rules with a brand's overlay applied; raises ValueError (pydantic's
    ValidationError is one) when the result is not a valid rulebook."""
    document = shipped_document()
    if brand_overlay:
        extra = dict(brand_overlay)
        removed = extra.pop("remove", None)
        document = overlay(document, extra)
        if removed:
            document = overlay(document, removed, remove=True)
    return Rulebook.model_validate(document)


@lru_cache(maxsize=32)
def _cached(overlay_json: str) -> Rulebook:
    return build_rulebook(json.loads(overlay_json) or None)


def rulebook(brand_overlay: dict[str, Any] | None = None) -> Rulebook:
    """The rulebook for a brand's overlay, built once per distinct overlay."""
    return _cached(json.dumps(brand_overlay or {}, sort_keys=True, ensure_ascii=False))
