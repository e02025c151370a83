"""Classification: measured on the labelled samples, and held to wording the samples do not
contain (the product is judged on mail it has never seen)."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from shared.complaints.classify import TRADITIONAL_TO_SIMPLIFIED, classify, fold
from shared.complaints.language import _encodes, detect_language
from shared.complaints.rulebook import rulebook
from tests.unit.test_mail_parsing import Sample, labelled_samples

CATEGORIES = ("product_quality", "service", "price", "other")


def _new_cases() -> list[Sample]:
    return [s for s in labelled_samples() if s.label["disposition"] == "new_case"]


# --- the labelled samples -------------------------------------------------------------

def test_labelled_samples_category_accuracy_and_flags() -> None:
    confusion: Counter[tuple[str, str]] = Counter()
    wrong_flags = []
    severity_hits = 0
    for sample in _new_cases():
        label, result = sample.label, classify(sample.mail.subject, sample.mail.text)
        confusion[(label["category"], result.category)] += 1
        severity_hits += result.severity == label["severity"]
        if (result.safety, result.media_or_regulator) != (label["safety"], label["media_or_regulator"]):
            wrong_flags.append((label["file"], result.reasons))
    total = sum(confusion.values())
    accuracy = sum(n for (want, got), n in confusion.items() if want == got) / total
    print(f"\ncategory accuracy {accuracy:.0%} on {total} new cases; severity {severity_hits / total:.0%} (repeats are decided elsewhere)")
    print("label \\ got".ljust(16) + "".join(c[:8].rjust(9) for c in CATEGORIES))
    for want in CATEGORIES:
        print(want.ljust(16) + "".join(str(confusion[(want, got)]).rjust(9) for got in CATEGORIES))
    assert accuracy >= 0.9
    assert wrong_flags == []


def test_labelled_samples_critical_recall_and_precision() -> None:
    """Every critical sample is found (replies too: a reply can raise its case), and no
    other new case is called critical."""
    missed, false_alarms = [], []
    for sample in labelled_samples():
        if sample.mail.kind != "normal" or sample.label["severity"] is None:
            continue
        result = classify(sample.mail.subject, sample.mail.text)
        if sample.label["severity"] == "critical" and result.severity != "critical":
            missed.append(sample.label["file"])
        if sample.label["severity"] != "critical" and result.severity == "critical":
            false_alarms.append((sample.label["file"], result.reasons))
    print(f"\ncritical missed: {missed}; false alarms: {false_alarms}")
    assert missed == []
    assert false_alarms == []


def test_labelled_samples_language() -> None:
    for sample in _new_cases():
        language = detect_language(f"{sample.mail.subject}\n{sample.mail.text}")
        assert language.split("-")[0] == sample.label["language"], sample.label["file"]


# --- wording the samples do not contain -----------------------------------------------

@pytest.mark.parametrize(
    ("subject", "text"),
    [
        ("Lost power", "Yesterday the car suddenly lost power in the fast lane and I had to coast to the shoulder."),
        ("Engine", "The engine cut out on the motorway at 70 mph and a lorry nearly hit me."),
        ("方向盘", "昨天开车的时候方向盘突然很沉打不动，吓得我一身冷汗。"),
        ("电池", "晚上充电的时候电池包冒烟了，请尽快派人来看。"),
        ("Brakes", "If I press the brake pedal it sinks to the floor before the car slows down."),
        ("刹车", "刹车踩下去软绵绵的，好几次都刹不住车。"),
        ("Airbag", "The airbag warning light stays on since the service."),
        ("气囊", "侧气囊灯一直亮，店里说没事。"),
        ("安全带", "主驾安全带卡住拉不出来。"),
        ("Smell", "There is a strong smell of petrol inside the cabin after refuelling."),
        ("行驶中", "行驶中仪表盘突然全黑，车子失去动力滑行了很远。"),
        ("爆胎", "新车开了三个月，在高速上爆胎了。"),
        ("車窗", "孩子的手被電動車窗夾傷了，車窗沒有防夾功能嗎？"),
        ("煞車", "我的車在高速公路上煞車失靈，差點撞到前車。"),
        ("軚盤", "開車時軚盤突然好重，扭唔到。"),
        ("Charging", "The charging port was melting when I unplugged the cable."),
        ("AEB", "车在高速上自动紧急刹车误触发，后车差点撞上来。"),
    ],
)
def test_indirect_safety_wording_is_critical(subject: str, text: str) -> None:
    result = classify(subject, text)
    assert (result.safety, result.severity) == (True, "critical"), result.reasons
    assert result.category == "product_quality"


@pytest.mark.parametrize(
    ("subject", "text", "category"),
    [
        ("保养太贵", "刹车有点异响，不影响安全，主要是这次保养收了我两千多，价格太离谱。", "price"),
        ("Invoice", "The brake squeal has been fixed, thanks. My complaint is about the bill: you charged me 900 dollars for pads.", "price"),
        ("收费问题", "上个月刹车失灵，店里已经修好了，现在一切正常。但是工时费就收了我800，太贵了。", "price"),
        ("Rattle", "There is a squeak from the rear door. It is not dangerous, just annoying.", "product_quality"),
        ("Noise", "The rattle could be dangerous, I suppose, but mostly it is annoying.", "product_quality"),
        ("Accident", "Someone reversed into my parked car, nobody was injured. I want to know how the insurance claim works.", "other"),
        ("顶灯", "车顶阅读灯不亮，没有任何危险，就是晚上不方便。", "product_quality"),
        ("发动机舱", "洗车以后发动机舱没有冒烟也没有异味，但是仪表上一直提示胎压异常。", "product_quality"),
        ("空调", "空调不制冷，担心夏天会起火吗？", "product_quality"),
    ],
)
def test_denied_fixed_or_imagined_danger_is_not_critical(subject: str, text: str, category: str) -> None:
    result = classify(subject, text)
    assert (result.safety, result.severity) == (False, "general"), result.reasons
    assert result.category == category, result.reasons


def test_a_fixed_fault_that_came_back_is_critical_again() -> None:
    result = classify("刹车", "上个月刹车失灵，店里说修好了，结果昨天又失灵了！")
    assert result.severity == "critical"


@pytest.mark.parametrize(
    "text",
    [
        "如果下周还不解决，我就把视频发到抖音上。",
        "我已经联系了报社的记者。",
        "我会向消费者协会投诉。",
        "我已经打了１２３１５。",  # full-width digits
        "我朋友是律师，准备起诉你们。",
        "我不想闹到媒体那里，但是如果下周还没有结果，我就去找。",  # ruled out, then back on
        "我本来不会找媒体的，但是你们再拖下去就难说了。",
        "If this is not sorted by Friday I will instruct my lawyer.",
        "I'll be posting about this on Twitter and contacting the local TV station.",
        "I am reporting this to the consumer council.",
        "我已經向消委會投訴了。",
    ],
)
def test_media_regulator_and_court_threats_are_critical(text: str) -> None:
    result = classify("投诉", text)
    assert (result.media_or_regulator, result.severity) == (True, "critical"), result.reasons


@pytest.mark.parametrize(
    "text",
    [
        "车上的多媒体系统经常死机，流媒体后视镜也黑屏。",
        "The window regulator on the driver's side is broken.",
        "我的电话是139 1231 5678，请联系我。",
        "我在微博上看到有人说这个问题能升级解决。",
        "我不会去找媒体，只想把车修好。",
        "I will not go to the press, I just want the car fixed.",
        "我不想闹到媒体那里，希望你们尽快处理。",  # policy §4: a mention that rules it out is no threat
        "我朋友说可以找律师，但我只想把车修好。",  # reported, not taken up
        "My neighbour said I should call a lawyer, but I would rather sort it out with you.",
    ],
)
def test_mentions_that_are_not_threats(text: str) -> None:
    result = classify("车的问题", text)
    assert not result.media_or_regulator, result.reasons


@pytest.mark.parametrize(
    ("text", "demands"),
    [
        ("我要求退车并退还全部购车款。", True),
        ("请给我换一台新车。", True),
        ("要求厂家承担维修费用和误工费。", True),
        ("I want you to buy back this car and refund me in full.", True),
        ("I expect a goodwill gesture for the two wasted days.", True),
        ("我不是要你们赔钱，只想要个说法。", False),
        ("Please arrange a replacement car while mine is in the workshop.", False),
        ("我已经支付了保养费用，但是发票还没开。", False),
        ("请更换主驾座椅加热垫。", False),  # a repair, not compensation
    ],
)
def test_compensation_demand_makes_a_major_complaint(text: str, demands: bool) -> None:
    result = classify("投诉", text)
    assert result.demands_compensation is demands, result.reasons
    assert result.severity == ("major" if demands else "general")


def test_safety_outranks_a_compensation_demand() -> None:
    result = classify("Fire", "The car caught fire in my garage. I demand full compensation for the damage.")
    assert (result.severity, result.demands_compensation) == ("critical", True)


@pytest.mark.parametrize(
    ("subject", "text", "category"),
    [
        ("Rude staff", "The service advisor was rude and nobody called me back for a week.", "service"),
        ("销售骗人", "销售顾问承诺两周交车，现在一个月了还没消息，问他也不回。", "service"),
        ("多收费", "结算单上多收了我三百块的工时费，事先也没有报价。", "price"),
        ("貸款", "貸款的利息和合同上寫的不一樣，金融專員也說不清楚。", "other"),
        ("App", "The app logs me out every day and the loyalty points never arrive.", "other"),
        ("天窗漏水", "新车天窗漏水，下雨天座椅都湿了。", "product_quality"),
    ],
)
def test_category_is_what_the_complaint_is_about(subject: str, text: str, category: str) -> None:
    assert classify(subject, text).category == category


def test_reasons_name_the_deciding_phrases() -> None:
    result = classify("S5刹车失灵", "我要求退车，不然就找电视台曝光。")
    assert "safety (brakes): 刹车失灵" in result.reasons
    assert "media_or_regulator (media): 电视台" in result.reasons
    assert "compensation: 退车" in result.reasons
    assert result.reasons[-1] == "severity critical: safety risk and media/regulator/court"


def test_quoted_history_does_not_escalate() -> None:
    text = "好的，周六上午到店。\n\n在 2026-11-12 14:03，客服 写道：\n> 如有疑问可拨打12315以外的热线，刹车失灵请立即停车。"
    assert classify("Re: 预约", text).severity == "general"


# --- language -------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("我的车刹车有问题，请尽快联系我。", "zh"),
        ("我的車煞車有問題，請盡快聯絡我。", "zh-Hant"),
        ("My car's brakes fail at speed. Plate 沪A12345, please call me.", "en"),
        ("你好，我的iPhone连不上车机蓝牙，App也登录不了。", "zh"),
        ("", "en"),
    ],
)
def test_detect_language(text: str, language: str) -> None:
    assert detect_language(text) == language


# --- the tables -----------------------------------------------------------------------

def _all_terms() -> list[str]:
    return rulebook().terms()


def test_terms_are_valid_lower_case_patterns() -> None:
    for term in _all_terms():
        re.compile(term)
        assert term == term.lower(), term


def test_traditional_mail_matches_every_simplified_term() -> None:
    """Each character specific to Simplified script in the tables has its Traditional form
    in the folding table, so Traditional mail matches the same rules."""
    simplified_forms = {pair[1] for pair in TRADITIONAL_TO_SIMPLIFIED.split()}
    missing = {
        ch for term in _all_terms() for ch in term
        if "\u4e00" <= ch <= "\u9fff" and _encodes(ch, "gb2312") and not _encodes(ch, "big5") and ch not in simplified_forms
    }
    assert missing == set()


def test_folding_table_pairs_traditional_with_simplified() -> None:
    pairs = TRADITIONAL_TO_SIMPLIFIED.split()
    assert all(len(p) == 2 and p[0] != p[1] and _encodes(p[0], "big5hkscs") and _encodes(p[1], "gb2312") for p in pairs)
    assert len({p[0] for p in pairs}) == len(pairs)


def test_fold_keeps_positions() -> None:
    text = "極光上海浦東４Ｓ店：ＢＲＡＫＥ　Fail"
    assert len(fold(text)) == len(text)
    assert fold(text) == "极光上海浦东4s店:brake fail"
