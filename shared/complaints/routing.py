"""Which dealer a complaint belongs to (policy.md §2): the dealer address it was sent to,
then a dealer code, name or city in the text, then the servicing dealer of a known
vehicle (VIN or plate), else nobody: the brand CR center's triage queue.

Text evidence is weighed, not just found: a dealer's code or full name outweighs its
district, which outweighs a bare city, so a city in a forwarder's signature or a place the
customer passed through cannot beat a named dealer. A plate's province prefix (沪, 粤) is
not a city.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from .classify import fold


class DealerInfo(Protocol):
    """What routing reads of a dealer (``tenant.Dealer`` has it)."""

    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def name_zh(self) -> str | None: ...
    @property
    def city(self) -> str: ...
    @property
    def city_zh(self) -> str | None: ...
    @property
    def address(self) -> str: ...


class VehicleInfo(Protocol):
    """A vehicle record as intake reads it (``tenant.Vehicle`` has it)."""

    @property
    def vin(self) -> str: ...
    @property
    def plate(self) -> str | None: ...
    @property
    def model(self) -> str | None: ...
    @property
    def serviced_by(self) -> str | None: ...


# find_vehicle(vin, plate): the brand's vehicle record, if it has one.
VehicleLookup = Callable[[str | None, str | None], VehicleInfo | None]


@dataclass(frozen=True)
class Identifiers:
    vins: list[str]
    plates: list[str]
    case_numbers: list[str]
    dealer_codes: list[str]
    # VINs written with O, I or Q for 0, 1, 0 whose check digit does not confirm the
    # reading: a known vehicle's VIN only.
    uncertain_vins: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class RouteResult:
    dealer: str | None  # None: the brand's triage queue
    reason: str
    vin: str | None  # of the known vehicle, else the first VIN written
    plate: str | None


# ISO 3779: 17 characters without I, O, Q; the last four are digits. People type O, Q for 0
# and I for 1: a candidate may hold them, and is read with them replaced.
_VIN = re.compile(r"(?<![A-Z0-9])[A-Z0-9]{13}[0-9OIQ]{4}(?![A-Z0-9])")
_VIN_TYPOS = str.maketrans("OQI", "001")
# The check digit (position 9): each character's value (letters transliterated) times its
# position's weight, modulo 11, 10 written X. Required in North America (WMI 1-5) and by
# China's GB 16735 (WMI L); elsewhere optional, so not checked.
_VIN_VALUES = dict(zip("ABCDEFGHJKLMNPRSTUVWXYZ", [1, 2, 3, 4, 5, 6, 7, 8, 1, 2, 3, 4, 5, 7, 9, 2, 3, 4, 5, 6, 7, 8, 9],
                       strict=True))
_VIN_WEIGHTS = (8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2)
_VIN_CHECKED = "12345L"
# Mainland plates: province, issuing-office letter, five characters (six for new-energy).
_PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"
_PLATE = re.compile(rf"([{_PROVINCES}])\s?([A-HJ-NP-Z])[\s·•.\-]?([A-HJ-NP-Z0-9]{{5,6}})(?![A-Z0-9])")
# Hong Kong plates (AB 1234: up to two letters without I, O, Q, up to four digits) and Taiwan
# plates (ABC-1234, AB-1234, 1234-AB) look like much else, so count only after a word for a plate.
_PLATE_WORD = r"(?:车牌号码|车牌号|车牌|牌照|号牌|plate(?:\s*(?:no\.?|number))?|registration(?:\s*no\.?)?|licen[cs]e\s*plate)"
_HK_PLATE = re.compile(rf"{_PLATE_WORD}\s*[:：]?\s*([A-HJ-NPR-Z]{{1,2}})\s?([1-9]\d{{0,3}})(?![\dA-Z-])", re.IGNORECASE)
_TW_PLATE = re.compile(rf"{_PLATE_WORD}\s*[:：]?\s*([A-Z]{{2,3}}-\d{{4}}|\d{{4}}-[A-Z]{{2}})(?![\dA-Z])", re.IGNORECASE)
# Mainland mobile numbers as people write them: 13880001919, 138 8000 1919, +86-138-8000-1919.
# Landlines and 400 hotlines are not a customer's own number.
_MOBILE = re.compile(r"(?<![\d+])(?:\+?86[\s-]?)?(1[3-9]\d)[\s-]?(\d{4})[\s-]?(\d{4})(?!\d)")
_LINK = re.compile(r"https?://\S+|[\w.+-]+@[\w-]+(?:\.[\w-]+)+", re.IGNORECASE)

# How much a mention says about the dealer meant.
_CODE, _NAME, _NAME_CORE, _DISTRICT, _CITY = 5, 5, 4, 3, 1


def extract_identifiers(text: str, case_prefix: str, dealer_codes: Iterable[str] = ()) -> Identifiers:
    """VINs, plates, case numbers and (the tenant's own) dealer codes in a text, in the
    order written, each once, normalised (upper case, no separators in plates)."""
    folded = fold(text).upper()
    vins, uncertain = [], []
    for written in _VIN.findall(folded):
        vin = written.translate(_VIN_TYPOS)
        if not re.search("[A-HJ-NPR-Z]", vin) or len(re.findall(r"\d", written[-4:])) < 2:
            continue  # a number, or a word: not a VIN
        if vin == written or vin_check_digit(vin) is True:
            vins.append(vin)
        else:
            uncertain.append(vin)
    plates = _plates(folded)
    case = re.compile(rf"(?<![A-Z0-9]){re.escape(case_prefix.upper())}-[A-Z0-9]{{2,10}}-\d{{6}}-\d{{3,6}}(?!\d)")
    first_seen: dict[str, int] = {}
    for code in dealer_codes:
        if found := re.search(rf"(?<![A-Z0-9]){re.escape(code.upper())}(?![A-Z0-9])", folded):
            first_seen[code.upper()] = found.start()
    return Identifiers(
        vins=_unique(vins),
        plates=_unique(plates),
        case_numbers=_unique(case.findall(folded)),
        dealer_codes=sorted(first_seen, key=first_seen.__getitem__),
        uncertain_vins=_unique([v for v in uncertain if v not in vins]),
    )


def vin_check_digit(vin: str) -> bool | None:
    """Whether a VIN's check digit (ISO 3779, North America; China's GB 16735) is right;
    None where its world manufacturer code does not require one."""
    if len(vin) != 17 or vin[0] not in _VIN_CHECKED:
        return None
    try:
        total = sum((int(ch) if ch.isdigit() else _VIN_VALUES[ch]) * w for ch, w in zip(vin, _VIN_WEIGHTS, strict=True))
    except KeyError:
        return False
    return vin[8] == ("X" if total % 11 == 10 else str(total % 11))


def _plates(folded: str) -> list[str]:
    """Mainland, Hong Kong and Taiwan plates in the order written, without separators."""
    found = [(m.start(), "".join(m.groups())) for m in _PLATE.finditer(folded)]
    found += [(m.start(), "".join(m.groups())) for m in _HK_PLATE.finditer(folded)]
    found += [(m.start(), m.group(1).replace("-", "")) for m in _TW_PLATE.finditer(folded)]
    return [plate.upper() for _, plate in sorted(found)]


def mobile_numbers(text: str) -> list[str]:
    """Mainland mobile numbers in a text, as 11 digits, each once, in the order written."""
    return _unique(["".join(parts) for parts in _MOBILE.findall(fold(text))])


def route(
    *,
    recipients: list[str],
    text: str,
    dealers: Sequence[DealerInfo],
    brand_addresses: list[str],
    case_prefix: str,
    find_vehicle: VehicleLookup,
) -> RouteResult:
    """The dealer a complaint mail belongs to, and why."""
    ids = extract_identifiers(text, case_prefix, [d.code for d in dealers])
    vehicle = _known_vehicle(ids, find_vehicle)
    vin = vehicle.vin if vehicle else next(iter(ids.vins), None)
    plate = (vehicle.plate if vehicle else None) or next(iter(ids.plates), None)

    def result(dealer: str | None, reason: str) -> RouteResult:
        return RouteResult(dealer=dealer, reason=reason, vin=vin, plate=plate)

    sent_to = _by_recipient(recipients, dealers, brand_addresses)
    if sent_to:
        return result(*sent_to)
    named, why = _by_text(text, dealers, ids)
    if named:
        return result(named, why)
    codes = {d.code for d in dealers}
    if vehicle and vehicle.serviced_by in codes:
        return result(vehicle.serviced_by, f"known vehicle (VIN …{vehicle.vin[-6:]}) is serviced by {vehicle.serviced_by}")
    reasons = ["no dealer address, dealer name or city, or known vehicle", why]
    return result(None, "; ".join(r for r in reasons if r) + ": brand triage")


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))


def _known_vehicle(ids: Identifiers, find_vehicle: VehicleLookup) -> VehicleInfo | None:
    for vin in [*ids.vins, *ids.uncertain_vins]:
        if found := find_vehicle(vin, None):
            return found
    for plate in ids.plates:
        if found := find_vehicle(None, plate):
            return found
    return None


def _by_recipient(recipients: list[str], dealers: Sequence[DealerInfo], brand_addresses: list[str]) -> tuple[str, str] | None:
    """A dealer's own complaint address, or a brand address tagged with a dealer code
    (kefu+sh001@…), among the recipients."""
    by_address = {d.address.lower(): d.code for d in dealers}
    by_code = {d.code.lower(): d.code for d in dealers}
    brand = {a.lower() for a in brand_addresses}
    for recipient in recipients:
        local, _, domain = recipient.strip().lower().partition("@")
        base, _, tag = local.partition("+")
        address = f"{base}@{domain}"
        if address in by_address:
            return by_address[address], f"sent to the dealer address {address}"
        if tag in by_code and address in brand:
            return by_code[tag], f"sent to the brand address {address} tagged {tag}"
    return None


def _by_text(text: str, dealers: Sequence[DealerInfo], ids: Identifiers) -> tuple[str | None, str]:
    """The dealer with the strongest mention in the text and why, or None and why not."""
    folded = _LINK.sub(" ", fold(text))
    best: dict[str, tuple[int, int, str]] = {}  # code -> (weight, mentions, what)
    for code in ids.dealer_codes:
        best[code] = (_CODE, 1, f"dealer code {code}")
    for dealer in dealers:
        for phrase, weight, what in _phrases(dealer, dealers):
            mentions = len(re.findall(_bounded(phrase), folded))
            if mentions and (weight, mentions) > best.get(dealer.code, (0, 0, ""))[:2]:
                best[dealer.code] = (weight, mentions, what)
    if not best:
        return None, ""
    ranked = sorted(best.items(), key=lambda item: item[1][:2], reverse=True)
    (code, (weight, mentions, what)), rest = ranked[0], ranked[1:]
    if rest and rest[0][1][:2] == (weight, mentions):
        tied = ", ".join(c for c, (w, m, _) in ranked if (w, m) == (weight, mentions))
        return None, f"the text names several dealers equally ({tied})"
    return code, f"{what} in the text"


def _bounded(phrase: str) -> str:
    """Latin-script phrases match whole words; Chinese ones anywhere."""
    if re.search("[a-z]", phrase):
        return rf"(?<![a-z0-9]){re.escape(phrase)}(?![a-z])"
    return re.escape(phrase)


def _common_prefix(names: list[str]) -> str:
    first, last = min(names), max(names)
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    return first[:size]


def _phrases(dealer: DealerInfo, dealers: Sequence[DealerInfo]) -> list[tuple[str, int, str]]:
    """Folded phrases naming a dealer, with their weight and what they are: its name; its
    name without what all dealers' names share (极光…4S店, Aurora … 4S); that without its
    city, the district; its city."""
    found: list[tuple[str, int, str]] = []
    names_zh = [fold(d.name_zh) for d in dealers if d.name_zh]
    if dealer.name_zh:
        name_zh = fold(dealer.name_zh)
        found.append((name_zh, _NAME, f"dealer name {dealer.name_zh}"))
        if len(names_zh) > 1:
            prefix = _common_prefix(names_zh)
            suffix = _common_prefix([n[::-1] for n in names_zh])[::-1]
            core = name_zh[len(prefix) : len(name_zh) - len(suffix)]
            district = core.removeprefix(fold(dealer.city_zh or ""))
            found += [(core, _NAME_CORE, f"dealer {core}"), (district, _DISTRICT, f"district {district}")]
    name = fold(dealer.name)
    found.append((name, _NAME, f"dealer name {dealer.name}"))
    words = name.split()
    shared = set.intersection(*(set(fold(d.name).split()) for d in dealers)) if len(dealers) > 1 else set()
    core_words = [w for w in words if w not in shared]
    city_words = fold(dealer.city).split()
    core, district = " ".join(core_words), " ".join(w for w in core_words if w not in city_words)
    found += [(core, _NAME_CORE, f"dealer {core}"), (district, _DISTRICT, f"district {district}")]
    cities = [fold(dealer.city), fold(dealer.city_zh or "")]
    found = [entry for entry in found if entry[0] not in cities]  # a bare city stays weak
    found += [(city, _CITY, f"city {city}") for city in cities]
    return [entry for entry in found if len(entry[0].strip()) >= 2]
