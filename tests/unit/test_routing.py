"""Routing to a dealer (policy.md §2) and the identifiers it reads, on the demo tenant."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import pytest

from shared.complaints.routing import (
    Identifiers,
    RouteResult,
    extract_identifiers,
    mobile_numbers,
    route,
    vin_check_digit,
)
from shared.complaints.tenant import Tenant, Vehicle
from tests.fakes import demo_tenant_doc
from tests.unit.test_mail_parsing import labelled_samples

_DOC, VEHICLES = demo_tenant_doc()
TENANT = Tenant.model_validate(_DOC)
CODES = [d.code for d in TENANT.dealers]


@dataclass(frozen=True)
class Dealer:
    """A dealer of another tenant shape, to show routing needs only the protocol."""

    code: str
    name: str
    name_zh: str | None
    city: str
    city_zh: str | None
    address: str


def find_vehicle(vin: str | None, plate: str | None) -> Vehicle | None:
    return next((v for v in VEHICLES if (vin and v.vin == vin) or (plate and v.plate == plate)), None)


def route_demo(text: str, recipients: tuple[str, ...] = ("complaints@aurora-motors.example",)) -> RouteResult:
    return route(
        recipients=list(recipients), text=text, dealers=TENANT.dealers, brand_addresses=TENANT.brand.intake_addresses,
        case_prefix=TENANT.brand.case_prefix, find_vehicle=find_vehicle,
    )


# --- identifiers ----------------------------------------------------------------------

def test_extracts_vins_plates_case_numbers_and_our_dealer_codes() -> None:
    text = (
        "车架号LAUR0A1B2C3000001，另一台 vin laur0a1b2c3000002；车牌粤A·11223、滬A12345、京AD12345、浙 A3F2K9。"
        "上次投诉编号 AUR-CD004-202610-00027 和 aur-hq-202611-00003，工单 SH001-RO-20261012-0087，"
        "经销商 XY999 不是我们的；电话 13800138000123456。"
    )
    assert extract_identifiers(text, "AUR", CODES) == Identifiers(
        vins=["LAUR0A1B2C3000001", "LAUR0A1B2C3000002"],
        plates=["粤A11223", "沪A12345", "京AD12345", "浙A3F2K9"],
        case_numbers=["AUR-CD004-202610-00027", "AUR-HQ-202611-00003"],
        dealer_codes=["CD004", "SH001"],
    )


@pytest.mark.parametrize(
    "text",
    [
        "LAUR0A1B2C30000O2",  # O read as 0 gives a VIN whose check digit fails: no VIN
        "LAURIA1B2C3000001",  # nor does I read as 1 here
        "LAUR0A1B2C3000001X",  # 18 characters
        "ABCDEFGHJKLMNPRST",  # the last four of a VIN are digits
        "12345678901234567",  # digits only: a number, not a VIN
    ],
)
def test_not_a_vin(text: str) -> None:
    assert extract_identifiers(text, "AUR").vins == []


# --- routing --------------------------------------------------------------------------

def test_the_dealer_address_comes_first() -> None:
    result = route_demo("极光北京朝阳4S店的服务太差", recipients=("Kefu@aurora-motors.example", "SH001@Complaints.Aurora-Motors.example"))
    assert (result.dealer, result.reason) == ("SH001", "sent to the dealer address sh001@complaints.aurora-motors.example")


def test_brand_address_tagged_with_a_dealer_code() -> None:
    assert route_demo("x", recipients=("kefu+gz003@aurora-motors.example",)).dealer == "GZ003"
    assert route_demo("x", recipients=("someone+gz003@elsewhere.example",)).dealer is None


@pytest.mark.parametrize(
    ("text", "dealer"),
    [
        ("合同上的经销商代码是 hz005。", "HZ005"),
        ("我在極光上海浦東4S店做的保養。", "SH001"),  # Traditional script
        ("I bought it at Aurora Chengdu Wuhou 4S last year.", "CD004"),
        ("在广州天河那家店买的。", "GZ003"),
        ("Pudong branch never called me back.", "SH001"),
        ("朝阳店的服务顾问态度很差。", "BJ002"),
        ("我是杭州的车主。", "HZ005"),
    ],
)
def test_dealer_code_name_district_or_city_in_the_text(text: str, dealer: str) -> None:
    assert route_demo(text).dealer == dealer


def test_a_clear_dealer_name_beats_cities_elsewhere() -> None:
    text = (
        "我在极光成都武侯4S店买的车，交车一拖再拖。\n\n--\n张三\n上海市浦东新区某某路1号（工作地址）\n"
        "---------- Forwarded message ----------\nFrom: 客服 <cs@dealer.example>\n签名：杭州 · 北京 · 广州"
    )
    result = route_demo(text)
    assert (result.dealer, result.reason) == ("CD004", "dealer name 极光成都武侯4S店 in the text")


def test_a_plate_province_is_not_a_city() -> None:
    result = route_demo("车牌沪C99001，高速上突然没动力。")  # 沪 is Shanghai; the car is serviced in Hangzhou
    assert (result.dealer, result.vin, result.plate) == ("HZ005", "LAUR0A1B2C3000006", "沪C99001")
    assert result.reason == "known vehicle (VIN …000006) is serviced by HZ005"


def test_a_known_vin_routes_to_its_servicing_dealer_not_its_seller() -> None:
    result = route_demo("VIN LAUR0A1B2C3000005, plate 浙A77889: burning smell.")
    assert (result.dealer, result.vin, result.plate) == ("SH001", "LAUR0A1B2C3000005", "浙A77889")


def test_unknown_vehicle_goes_to_triage_and_keeps_what_was_written() -> None:
    result = route_demo("车架号LAUR0A1B2C3007731，车牌苏A00001，我在南京。")
    assert (result.dealer, result.vin, result.plate) == (None, "LAUR0A1B2C3007731", "苏A00001")
    assert result.reason.endswith("brand triage")


def test_two_cities_alone_are_ambiguous_unless_a_vehicle_decides() -> None:
    ambiguous = route_demo("我在上海工作，家在杭州。")
    assert ambiguous.dealer is None and "several dealers" in ambiguous.reason
    assert route_demo("我在上海工作，家在杭州。车牌粤A11223。").dealer == "GZ003"


def test_routing_needs_only_the_dealer_protocol() -> None:
    dealers = [
        Dealer("N01", "Nova Munich", None, "Munich", None, "n01@nova.example"),
        Dealer("N02", "Nova Berlin Mitte", None, "Berlin", None, "n02@nova.example"),
    ]
    result = route(
        recipients=["care@nova.example"], text="The Mitte workshop kept my car for a week.", dealers=dealers,
        brand_addresses=["care@nova.example"], case_prefix="NOV", find_vehicle=lambda vin, plate: None,
    )
    assert result.dealer == "N02"


# --- the labelled samples -------------------------------------------------------------

def test_labelled_samples_are_routed() -> None:
    outcomes: Counter[str] = Counter()
    wrong = []
    for sample in labelled_samples():
        if sample.label["disposition"] != "new_case":
            continue
        parsed = sample.mail
        result = route_demo(f"{parsed.subject}\n{parsed.text}", recipients=(*parsed.to, *parsed.cc))
        expected = None if sample.label["dealer"] == "BRAND_TRIAGE" else sample.label["dealer"]
        outcomes[result.reason.split(" ")[0] if result.dealer else "triage"] += 1
        if (result.dealer, result.vin) != (expected, sample.label["vin"]):
            wrong.append((sample.label["file"], result))
    total = sum(outcomes.values())
    print(f"\nrouting {1 - len(wrong) / total:.0%} of {total} new cases; decided by {dict(outcomes)}; wrong: {wrong}")
    assert len(wrong) / total <= 0.05


@pytest.mark.parametrize(("text", "numbers"), [
    ("王磊\n138 8000 1919", ["13880001919"]),
    ("手机：+86-139-1234-5678，座机 028-6555 0101", ["13912345678"]),
    ("请拨打 400-820-8820 或 12315", []),
    ("订单号 1388000191999", []),
    ("１３９１２３４５６７８", ["13912345678"]),  # full-width digits
])
def test_mobile_numbers(text: str, numbers: list[str]) -> None:
    assert mobile_numbers(text) == numbers


# --- VINs through typos, check digits; Hong Kong and Taiwan plates (issue 15) ---------------

def test_vin_check_digit_where_it_applies() -> None:
    assert vin_check_digit("1M8GDM9AXKP042788") is True  # North America: X for 10
    assert vin_check_digit("1M8GDM9A1KP042788") is False
    assert vin_check_digit("LAUR0A1B2C3000001") is True  # China, GB 16735: the same digit
    assert vin_check_digit("WVWZZZ1KZ6W000001") is None  # Europe: not required


def test_a_vin_typed_with_o_i_q_is_read_when_its_check_digit_confirms_it() -> None:
    ids = extract_identifiers("VIN 1M8GDM9AXKPO42788, Fahrgestell LAURQA1B2C3O00001", "AUR")
    assert ids.vins == ["1M8GDM9AXKP042788", "LAUR0A1B2C3000001"]


def test_a_typo_read_the_check_digit_rejects_only_finds_a_known_vehicle() -> None:
    ids = extract_identifiers("车架号 LAUR0A1B2C3O00005", "AUR")
    assert ids.vins == [] and ids.uncertain_vins == ["LAUR0A1B2C3000005"]
    result = route_demo("车架号 LAUR0A1B2C3O00005，车有焦味。")
    assert (result.dealer, result.vin) == ("SH001", "LAUR0A1B2C3000005")


@pytest.mark.parametrize(("text", "plate"), [
    ("香港車牌 AB 1234，剎車失靈", "AB1234"),
    ("plate no. RX 88 at the Kowloon branch", "RX88"),
    ("台灣車牌號碼：ABC-1234", "ABC1234"),
    ("license plate 5678-KL", "5678KL"),
])
def test_hong_kong_and_taiwan_plates_after_a_word_for_a_plate(text: str, plate: str) -> None:
    assert extract_identifiers(text, "AUR").plates == [plate]


def test_plate_shapes_without_a_plate_word_are_not_plates() -> None:
    assert extract_identifiers("Modell AB 1234, Auftrag ABC-1234, Raum 5678-KL", "AUR").plates == []
