"""The tenant: a brand, its regions, dealers, staff and policy (policy.md §1)."""

from __future__ import annotations

import json
from functools import cached_property, lru_cache
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .calendar import WorkingCalendar
from .errors import ConfigurationError
from .language import REPLY_LANGUAGES
from .policy import Policy, Role, build_policy

TRIAGE = "HQ"  # the dealer segment of case numbers registered to the brand's triage queue


class Staff(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    email: str
    name: str
    role: Role
    region: str | None = None
    dealer: str | None = None  # filled in when the tenant is loaded


class Dealer(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    code: str
    name: str
    name_zh: str | None = None
    city: str
    city_zh: str | None = None
    region: str
    address: str
    staff: list[Staff]
    country: str | None = None
    subdivision: str | None = None
    timezone: str | None = None
    policy: dict[str, Any] | None = None


class Brand(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    id: str
    case_prefix: str
    name: str
    name_zh: str | None = None
    country: str
    timezone: str
    languages: list[str]
    # Whom a customer writing in a language we have no templates for is answered in;
    # none: the brand's first language.
    fallback_language: str | None = None
    intake_addresses: list[str]
    dealer_address_domain: str
    sender_address: str
    staff: list[Staff]
    policy: dict[str, Any] | None = None

    @field_validator("fallback_language")
    @classmethod
    def _answerable(cls, value: str | None) -> str | None:
        if value is not None and value not in REPLY_LANGUAGES:
            raise ValueError(f"fallback_language must be one of {', '.join(REPLY_LANGUAGES)}")
        return value

    def reply_language(self, language: str) -> str:
        """The language to answer a customer in: theirs where we have templates in it, else
        the brand's fallback."""
        if language in REPLY_LANGUAGES:
            return language
        return self.fallback_language or self.languages[0]

    @property
    def receiving_domains(self) -> set[str]:
        """The domains the brand receives mail at: its intake addresses' and its dealers'."""
        domains = {a.rpartition("@")[2].lower() for a in self.intake_addresses}
        return domains | {self.dealer_address_domain.lower()}


class Vehicle(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    vin: str
    model: str | None = None
    plate: str | None = None
    sold_by: str | None = None
    serviced_by: str | None = None
    owner_email: str | None = None


class Tenant(BaseModel):
    """One brand's configuration. Vehicles are not part of it: they live in their own
    records (a brand has millions), looked up by VIN or plate."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    brand: Brand
    dealers: list[Dealer] = Field(default_factory=list)

    @cached_property
    def _dealers(self) -> dict[str, Dealer]:
        return {d.code: d for d in self.dealers}

    def dealer(self, code: str | None) -> Dealer:
        try:
            return self._dealers[code or ""]
        except KeyError as exc:
            raise ConfigurationError(f"unknown dealer {code!r}") from exc

    def has_dealer(self, code: str | None) -> bool:
        return code is not None and code in self._dealers

    def dealer_by_address(self, address: str) -> Dealer | None:
        address = address.lower()
        for d in self.dealers:
            if d.address.lower() == address:
                return d
        return None


    def policy_for(self, dealer_code: str | None) -> Policy:
        dealer_policy = self.dealer(dealer_code).policy if self.has_dealer(dealer_code) else None
        return _policy(self.brand.policy, dealer_policy)

    def calendar_for(self, dealer_code: str | None) -> WorkingCalendar:
        """The dealer's working days and service hours, in its time zone (the brand's for triage)."""
        hours = self.policy_for(dealer_code).service_hours
        if self.has_dealer(dealer_code):
            d = self.dealer(dealer_code or "")
            return WorkingCalendar(d.country or self.brand.country, d.timezone or self.brand.timezone, d.subdivision,
                                   hours)
        return WorkingCalendar(self.brand.country, self.brand.timezone, service_hours=hours)

    def staff_with_role(self, role: Role, dealer_code: str | None) -> Staff:
        """The person holding a role for a dealer (dealer roles), its region, or the brand."""
        if role in ("cs_head", "service_manager", "general_manager"):
            if not self.has_dealer(dealer_code):
                return self.staff_with_role("brand_cr", None)
            for s in self.dealer(dealer_code or "").staff:
                if s.role == role:
                    return s.model_copy(update={"dealer": dealer_code})
            raise ConfigurationError(f"dealer {dealer_code} has no {role}")
        if role == "regional_manager":
            if not self.has_dealer(dealer_code):
                return self.staff_with_role("brand_cr", None)
            region = self.dealer(dealer_code or "").region
            for s in self.brand.staff:
                if s.role == role and s.region == region:
                    return s
            raise ConfigurationError(f"region {region} has no regional manager")
        for s in self.brand.staff:
            if s.role == "brand_cr":
                return s
        raise ConfigurationError("the brand has no customer-relations center")

    def staff_member(self, email: str) -> Staff | None:
        email = email.lower()
        for s in self.brand.staff:
            if s.email.lower() == email:
                return s
        for d in self.dealers:
            for s in d.staff:
                if s.email.lower() == email:
                    return s.model_copy(update={"dealer": d.code, "region": d.region})
        return None

    def forwards_for_customers(self, address: str | None) -> bool:
        """Whether mail from this address may carry a customer's complaint as a forward: the
        brand's and its dealers' staff, the brand's own addresses and domains (the 400
        hotline mails from there)."""
        address = (address or "").lower()
        if not address or self.staff_member(address) is not None:
            return address != ""
        own = {a.lower() for a in [*self.brand.intake_addresses, self.brand.sender_address]}
        own |= {d.address.lower() for d in self.dealers}
        return address in own or address.rpartition("@")[2] in self.brand.receiving_domains

    def sender_name(self, language: str) -> str:
        if language.startswith("zh") and self.brand.name_zh:
            return f"{self.brand.name_zh}客户关爱中心"
        return f"{self.brand.name} Customer Care"


def _policy(brand: dict[str, Any] | None, dealer: dict[str, Any] | None) -> Policy:
    return _cached_policy(json.dumps(brand, sort_keys=True), json.dumps(dealer, sort_keys=True))


@lru_cache(maxsize=64)
def _cached_policy(brand_json: str, dealer_json: str) -> Policy:
    return build_policy(json.loads(brand_json), json.loads(dealer_json))
