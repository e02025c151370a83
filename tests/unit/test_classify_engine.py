"""The classification engine as weighed evidence (issue 15): possible safety, context and
fear, quoted and forwarded words, the text cap, rules as data a brand extends, and the
targets on the labelled corpus (tuning part; the held-out part against its first measure)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from benchmarks.classify import CORPUS, Report, corpus_labels, score
from shared.complaints.classify import MAX_CHARS, classify
from shared.complaints.policy import build_policy
from shared.complaints.rulebook import build_rulebook, rulebook

# --- safety: certain, possible, discounted --------------------------------------------


@pytest.mark.parametrize(
    ("subject", "text"),
    [
        ("刹车", "感觉刹车有点软，不知道是不是正常。"),  # a hedge, no road, no fear
        ("Brakes", "I think the brakes feel a bit spongy lately."),
        ("方向盘", "方向盘最近有点抖，跑偏。"),  # vague signs only
        ("Engine", "The engine stalled twice this week."),  # loss of drive without a road
    ],
)
def test_weak_safety_evidence_is_critical_to_be_confirmed(subject: str, text: str) -> None:
    result = classify(subject, text)
    assert (result.severity, result.safety, result.possible_safety) == ("critical", False, True), result.reasons
    assert result.confidence <= 0.4
    assert any(e.kind.startswith("safety:") and e.weight < 1 for e in result.evidence)


@pytest.mark.parametrize(
    ("subject", "text", "hazard"),
    [
        ("Engine", "The engine stalled on the motorway and I had to coast to the hard shoulder.", "drive"),
        ("方向盘", "在高速上方向盘有点抖，差点撞到旁边的车。", "steering"),  # vague sign + fear
        ("刹車", "好像煞車有點軟，昨天在高速公路上差點追尾。", "brakes"),  # hedge outweighed by road and fear
        ("Steering", "On the highway the wheel went very light and pulled hard to the left.", "steering"),
        ("雨刮", "暴雨天在高速上雨刮突然不动了，什么都看不清。", "visibility"),
    ],
)
def test_a_sign_with_road_or_fear_is_a_clear_risk(subject: str, text: str, hazard: str) -> None:
    result = classify(subject, text)
    assert (result.severity, result.safety, result.possible_safety) == ("critical", True, False), result.reasons
    assert any(e.kind == f"safety:{hazard}" and e.weight == 1.0 for e in result.evidence), result.evidence


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("车没有出现过失去动力或者突然熄火的情况，就是起步有点顿挫。", "negated"),
        ("I read a news story about an electric car catching fire in a garage. Is mine safe to charge overnight?", "reported"),
        ("What happens if I get a blowout on the highway? Is there a spare?", "hypothetical"),
        ("上个月气囊故障灯亮，第三次才彻底修好，现在再没亮过。", "resolved"),
    ],
)
def test_discounted_safety_words_are_evidence_not_a_risk(text: str, why: str) -> None:
    result = classify("问题", text)
    assert result.severity != "critical", result.reasons
    assert any(e.kind == f"discounted:{why}" for e in result.evidence), result.evidence


def test_a_bill_with_brakes_soft_since_the_service_is_critical_and_stays_price() -> None:
    result = classify("保养收费太高", "上周保养收了我2800元，结算单上很多项目没做，价格也比报价高。"
                                      "而且保养以后刹车一直发软，在高架上要踩很深才停得住。")
    assert (result.severity, result.safety, result.category) == ("critical", True, "price"), result.reasons


def test_evidence_keeps_the_customers_own_script() -> None:
    result = classify("煞車失靈", "我的車在高速公路上煞車失靈，差點撞到前車。")
    phrases = [e.phrase for e in result.evidence if e.kind == "safety:brakes"]
    assert phrases and "煞車失靈" in phrases[0]


# --- threats ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "如果月底前还不解决，我就走法律途径。",
        "Unless I hear back by Friday I will be taking this to the small claims court.",
        "十四日內唔處理，我會入紙小額錢債審裁處追討。",
        "我已经向市场监督管理局反映了。",
        "I have filed a report with NHTSA.",
        "如果下個禮拜都冇回覆，我會直接向保險業監管局投訴。",
    ],
)
def test_threats_in_other_words(text: str) -> None:
    result = classify("投诉", text)
    assert (result.media_or_regulator, result.severity) == (True, "critical"), result.reasons


def test_a_reported_threat_lowers_confidence_without_making_it_critical() -> None:
    result = classify("车门异响", "车门一直有异响。朋友说这种情况可以找律师，我还是想先和你们沟通。")
    assert (result.media_or_regulator, result.severity) == (False, "general"), result.reasons
    assert any(e.kind == "discounted:reported" for e in result.evidence)
    assert result.confidence <= 0.5


# --- quoted and forwarded words -------------------------------------------------------


def test_a_forwarded_customer_mail_counts() -> None:
    text = ("各位好，客户的邮件转给投诉邮箱，请登记。\n\n---------- 转发的邮件 ----------\n发件人：客户 <c@mail.example>\n"
            "主题：刹车\n\n昨天在高速上刹车踩到底都没反应，差点追尾。")
    assert classify("转发：客户投诉", text).safety


def test_our_own_quoted_acknowledgement_does_not_count() -> None:
    text = ("好的，我周六去店里。\n\n---------- 转发的邮件 ----------\n发件人：极光汽车客户关系中心\n"
            "主题：[AUR-SH001-202611-00042] 您的投诉已受理\n\n如遇刹车失灵请立即停车，也可拨打12315。")
    result = classify("Fwd: 您的投诉已受理", text)
    assert result.severity == "general", result.reasons
    assert any(e.kind == "discounted:quoted" for e in result.evidence)


# --- the text cap and speed-sensitive input --------------------------------------------


def test_only_the_first_64_kb_of_text_is_classified() -> None:
    filler = "天窗有异响。" * (MAX_CHARS // 6 + 10)
    assert classify("异响", filler + "刹车失灵了，差点撞车。").severity == "general"
    assert classify("异响", "刹车失灵了，差点撞车。" + filler).severity == "critical"


# --- rules as data ----------------------------------------------------------------------


def test_a_brand_overlay_adds_and_removes_terms_and_replaces_weights() -> None:
    text = "我会去汽车消费维权中心反映这个问题。"
    assert not classify("投诉", text).media_or_regulator
    overlay = {"threats": {"kinds": {"regulator": ["汽车消费维权中心"]}}}
    assert classify("投诉", text, overlay).media_or_regulator
    removed = {"remove": {"threats": {"kinds": {"regulator": ["(?<!\\d)12315(?!\\d)"]}}}}
    assert not classify("投诉", "我要打12315。", removed).media_or_regulator
    assert rulebook({"weights": {"ask_factor": 2.0}}).weights.ask_factor == 2.0


def test_the_overlay_is_written_once_and_matches_traditional_mail() -> None:
    overlay = {"threats": {"kinds": {"media": ["维权群"]}}}
    assert classify("投訴", "我會把這件事發到車主維權群。", overlay).media_or_regulator


@pytest.mark.parametrize(
    "overlay",
    [
        {"threats": {"kinds": {"media": ["(unclosed"]}}},  # not a pattern
        {"threats": {"kinds": {"media": ["TV"]}}},  # not lower case
        {"safety": {"hazards": {"brakes": {"near": 0}}}},  # out of range
        {"weights": {"tie_order": ["service"]}},  # not every category
        {"unknown": {}},  # not a part of the rules
        {"remove": {"weights": {"ask_factor": 1}}},  # remove takes terms out of lists only
    ],
)
def test_invalid_rules_are_refused_on_load(overlay: dict[str, object]) -> None:
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        build_rulebook(overlay)


def test_a_brand_policy_with_invalid_rules_does_not_load() -> None:
    assert build_policy({"classification": {"rules": {"threats": {"kinds": {"media": ["维权群"]}}}}}).classification.rules
    with pytest.raises(ValidationError):
        build_policy({"classification": {"rules": {"threats": {"kinds": {"media": ["(bad"]}}}}})


# --- the corpus -------------------------------------------------------------------------


def _targets(part: str) -> None:
    report = score(part)
    assert report is not None
    print("\n" + report.render())
    assert report.safety_recall == 1.0, [s.label["file"] for s in report.misses() if s.label["safety"]]
    assert report.non_critical_kept >= 0.9
    assert report.category_accuracy >= 0.9


def test_tuning_corpus_targets() -> None:
    if corpus_labels("tuning") is None:
        pytest.fail(f"the tuning corpus is missing: {CORPUS / 'tuning'}")
    _targets("tuning")


# The held-out part (written by another author than the tuning part, never read while tuning)
# was first measured on 2026-12-04: category 73.3 %, safety complaints critical 90.9 % (20 of 22),
# non-critical kept 89.7 %. The acceptance targets are not met: issue 15 stays open. The first test
# keeps what was reached from slipping; the second fails loudly (strict xfail) once the targets hold,
# so that the marker is removed and the issue can be closed.
HELD_OUT_MEASURED = {"safety_recall": 20 / 22, "category_accuracy": 0.733, "non_critical_kept": 0.897}


def _held_out() -> Report:
    report = score("heldout")
    if report is None:
        pytest.fail(f"the held-out corpus is missing: {CORPUS / 'heldout'}")
    print("\n" + report.render())
    return report


def test_held_out_corpus_does_not_fall_below_its_first_measure() -> None:
    report = _held_out()
    assert report.safety_recall >= HELD_OUT_MEASURED["safety_recall"] - 1e-9
    assert report.category_accuracy >= HELD_OUT_MEASURED["category_accuracy"] - 1e-3
    assert report.non_critical_kept >= HELD_OUT_MEASURED["non_critical_kept"] - 1e-3


@pytest.mark.xfail(strict=True, reason="issue 15 open: held-out category 73.3 %, safety 90.9 %, non-critical 89.7 %")
def test_held_out_corpus_meets_the_acceptance_targets() -> None:
    """The acceptance figure: the held-out part is never used to tune the rules."""
    _targets("heldout")


# --- the command line -----------------------------------------------------------------


def test_complaints_classify_explains_any_mail_offline(capsys: pytest.CaptureFixture[str], tmp_path: object) -> None:
    from pathlib import Path

    from infra.local.cli import main

    sample = Path(__file__).resolve().parents[1] / "data" / "emails" / "p01_brake_failure_sh001.eml"
    garbage = Path(str(tmp_path)) / "garbage.eml"
    garbage.write_bytes(bytes(range(256)) * 4)
    main(["classify", str(sample), str(garbage), "--explain"])
    out = capsys.readouterr().out
    assert f"{sample}: critical · product_quality" in out
    assert "safety:brakes" in out and "severity critical: safety risk" in out
    assert f"{garbage}: general" in out


# --- kinds of wording (issue 15: generalise by kind, each tested in other words than the probe) ---


@pytest.mark.parametrize(
    ("subject", "text"),
    [
        # loss of propulsion said as coasting or an accelerator that does nothing, on the road
        ("高架上没动力", "在内环高架上开到八十码，油门怎么踩都没有反应，车子只能一路滑到路边。"),
        ("Lost drive", "On the motorway the accelerator did nothing and we coasted onto the hard shoulder."),
        # a wheel, nut or bolt that came loose (Cantonese folded)
        ("換胎之後", "換完胎第二日，隻轆啲螺絲鬆咗，用手都扭得郁。"),
        ("Wheel", "Two days after the tyre change the wheel nuts were loose, I could turn them by hand."),
        # a parked car that moved by itself
        ("停车后溜了", "我挂了P挡拉了手刹下车，车子自己往后溜了两米，撞到了墙。"),
        ("Parked car", "I left it in P on the hill and it rolled backwards into the fence."),
        # the net: a component with an abnormal event, in words no precise rule names
        ("气囊", "昨天气囊盖板自己弹开了。"),
        ("Bonnet", "The bonnet latch came apart in my hand yesterday."),
        # body parts or glass coming off or bursting at speed
        ("尾翼", "在高架上扰流板突然飞出去了，砸到后面的车。"),
        ("Sunroof", "The sunroof glass shattered on the dual carriageway."),
        # a hard brake pedal, a brake warning that came on
        ("刹车", "今天刹车踏板突然变硬，怎么都踩不动。"),
        ("ABS", "The ABS light came on and has stayed on ever since."),
        # a window closing on a child, a seat back that gave way, a cabin full of smoke
        ("Window", "The rear window shut on my son's fingers and kept going."),
        ("座椅", "急刹的时候副驾座椅靠背突然往后倒了。"),
        ("Smoke", "The cabin filled with smoke while we were queueing at the lights."),
        # violent shaking, a driver assist that did not slow
        ("抖", "开到一百码方向盘剧烈抖动。"),
        ("巡航", "开着自适应巡航，前车停了它却没有减速，我猛踩刹车才停住。"),
        # Taiwan and Hong Kong spellings of the same kinds
        ("駐車", "停在坡道上，排P檔拉手煞車，車子還是慢慢往下滑。"),
        ("車頭蓋", "架車行緊嘅時候，個車頭蓋突然彈起，遮住晒前面。"),
        ("煞車", "國道上儀表提示煞車系統故障，踩下去行程明顯變長。"),
        ("Brakes", "The brakes grabbed by themselves on the ring road."),
    ],
)
def test_kinds_of_safety_wording_are_critical(subject: str, text: str) -> None:
    result = classify(subject, text)
    assert result.severity == "critical", result.reasons


@pytest.mark.parametrize(
    ("subject", "text"),
    [
        ("Brake pads", "The price of the brake pads you quoted is far too high."),  # a price, not a failure
        ("召回", "请问我的车在气囊召回的范围内吗？"),  # a recall question
        ("Fixed", "The wheel nuts were loose last month but it has been fixed, no problem since."),
        ("怠速", "保养之后怠速的时候方向盘有点抖，油耗也高了。"),  # a vague sign at a standstill
        ("座椅加热", "座椅加热的插头松了，冬天不热。"),  # a comfort part, not a safety one
        ("News", "I keep reading news stories about cars rolling away on hills. Does mine have hill hold?"),
        # a cosmetic or minor part between the component and the sign, another clause, a car wash
        ("车门", "车门把手的漆掉了，才开了半年。"),
        ("Seal", "The door seal came loose after the car wash, please replace it."),
        ("钥匙", "我的车钥匙突然失灵了，车门打不开，只能用机械钥匙。"),
        ("加钱", "销售说刹车系统升级要加钱，突然又说不用了。"),
        ("Charger", "The home charger stopped working last week, please send someone."),
        ("Battery", "The 12V battery died overnight twice this month."),
        ("Price", "这次换刹车片报价突然涨了三百块。"),
    ],
)
def test_the_safety_net_leaves_hard_negatives_non_critical(subject: str, text: str) -> None:
    result = classify(subject, text)
    assert result.severity != "critical", result.reasons


@pytest.mark.parametrize(
    ("text", "threat"),
    [
        ("如果下周还不解决，我就把录音交给电视台的民生节目。", True),  # media by programme
        ("Fix it by Friday or the whole story goes to the consumer column of the Evening Herald.", True),  # by role
        ("如果再拖，我就发到车主群里，让大家评评理。", True),
        ("I won't bother with solicitors or the newspapers, I just want the booklet stamped.", False),  # a list ruled out
        ("唔處理我就去搵傳媒。", True),  # Cantonese: 搵 folds to 找
        ("I'll be writing to my MP about this.", True),  # an elected representative
        ("I am reporting this to the police.", True),
        ("The police came to the accident scene and took notes.", False),  # police at an accident: no threat
        ("I saw on the news that your brand had a recall.", False),  # the news as a source, not a threat
    ],
)
def test_media_named_by_role_and_a_ruled_out_list(text: str, threat: bool) -> None:
    assert classify("投诉", text).media_or_regulator is threat


def test_cantonese_folds_onto_the_same_terms() -> None:
    result = classify("架車喺路中間停咗", "今日喺高速上面，部車突然冇晒動力，我唔敢再揸。")
    assert result.severity == "critical" and (result.safety or result.possible_safety), result.reasons
