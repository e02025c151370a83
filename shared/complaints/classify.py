"""Explainable classification of a complaint (policy.md §4): its category, its severity,
and the flags that decide severity: a safety risk, a threat of media, regulator or court,
a demand for money back or another car.

The rules are data: the tables at the top, in Simplified Chinese, Traditional Chinese and
English, for a complaints expert to read and correct. Text and terms are folded before
matching (lower case, half-width, Traditional characters to Simplified, see ``fold``), so
a term is written once and matches both scripts; Traditional spellings appear only where
the regions use other words (煞車, 當機, 軚盤, 消基會). Terms are lower-case regular
expressions. Every decision records the phrases that made it in ``reasons``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from typing import NamedTuple

from .models import Category, Evidence, Language, Severity


class Hazard(NamedTuple):
    """A safety hazard: a phrase that says it alone, or a part and a sign of its failure
    close together, in either order (刹车…踩到底, heavy…steering)."""

    phrases: tuple[str, ...]
    parts: tuple[str, ...] = ()
    signs: tuple[str, ...] = ()
    near: int = 12  # most characters between part and sign; three times as many in Latin script


# --- the rules ------------------------------------------------------------------------

SAFETY: dict[str, Hazard] = {
    "brakes": Hazard(
        phrases=(
            "刹车失灵", "刹不住", "刹车失效", "制动失灵", "制动失效", "没有?制动力", "煞车失灵", "煞不住", "幽灵刹车",
            "(自己|莫名其妙地?)(急)?刹车", "(刹车|制动).{0,6}误(触发|启动|动作)", "误(触发|启动).{0,4}(刹车|制动)",
            "brake failure", "brakes? failed", "no brakes", "lost (the |my |all )?brakes",
            "(could|can) ?(no|n')?t (stop|brake)", "phantom braking", "braked (by itself|on its own|for no reason)",
        ),
        parts=("刹车", "制动", "煞车", "brakes?", "braking", "brake pedal", "abs"),
        signs=(
            "失灵", "失效", "不灵", "踩到底", "踩不下去", "没反应", "不管用", "制动力(下降|减弱|不足|很弱|变弱)",
            "变软", "发软", "踩空", "故障",
            r"fail\w*", "(went|goes|go|sank|sinks|sink|dropped|drops) (all the way |right )?to the floor",
            "no (braking|stopping) power",
            "(did|would|does) ?n[o']t (work|respond|stop|engage)", "not working", "stopped working", "spongy",
            "(feels|felt|went|is|was) soft", "warning light",
        ),
    ),
    "steering": Hazard(
        phrases=(
            "方向盘(打|转)不动", "方向盘锁死", "转向(失灵|失效)", "(转向助力|助力转向)(失效|故障|消失)", "(没有|没了|失去)助力",
            "助力(突然)?(没了|消失)",
            "(lost|loss of|no) power steering", "power steering (failed|failure|cut out|stopped working|went out)",
            "steering (wheel )?(locked|lock(ed)? up|seized|jammed)",
        ),
        parts=("方向盘", "转向(?!灯)", "方向机", "軚盘", "呔盘", "steering( wheel)?"),
        signs=(
            "沉", "(?<!严)重(?!新|复|要|点|视|启|量|庆|大)", "打不动", "转不动", "打不了", "锁死", "锁住", "卡死", "卡住",
            "失灵", "失效", "费劲", "费力",
            "heavy", "stiff", "locked", "lock(ed)? up", "seized", "jammed", "hard to turn", "(would|could|did) ?n[o']t turn",
            r"no (power )?assist\w*", r"lost (power )?assist\w*", r"fail\w*",
        ),
    ),
    "airbag": Hazard(
        phrases=("气囊(故障|报警)灯", r"none of the (\w+ )?air ?bags", "no air ?bags? (deployed|went off|opened|fired)"),
        parts=("气囊", "气帘", "air ?bags?"),
        signs=(
            "没有?弹", "未弹", "不弹", "(没有?|未)(打开|展开|爆|起爆)", "故障灯", "灯(一直|常|总是|还)?亮", "误弹", "(自己|突然|自行)弹",
            r"(did ?n[o']t|did not|failed to|never|not|would ?n[o']t) (deploy|go off|open|inflate)\w*",
            "warning light", "light (is |stays |came |comes )?on", "deployed (by itself|on its own|for no reason)",
        ),
    ),
    "seatbelt": Hazard(
        phrases=(),
        parts=("安全带", "seat ?belts?"),
        signs=(
            "卡住", "卡死", "拉不出", "扣不上", "锁不住", "不回收", "失效", "断了", "断裂",
            r"(won't|will not|doesn't|does not|didn't|did not) (latch|lock|retract|release)", "jammed", "stuck", r"fail\w*",
        ),
    ),
    "wheels": Hazard(
        phrases=(
            "爆胎", "(车轮|轮子|轮胎|轮毂)(脱落|飞了|掉了)", "(半轴|球头|悬挂|悬架|摆臂|转向拉杆)(断了|断裂|脱落)",
            "(tyre|tire) (blew out|burst|exploded)", "blowout", "wheel (came|fell) off",
            "(suspension|axle|ball joint|control arm|tie rod) (broke|snapped|collapsed|failed)",
        ),
    ),
    "fire": Hazard(
        phrases=(
            "起火", "着火", "失火", "自燃", "(?<!排气管)(?<!尾气)冒烟", "冒火", "火苗", "明火", "火灾", "烧起来", "烧焦",
            "焦糊味", "焦味", "消防车", "(燃油|汽油|油箱|油管)(泄漏|漏油|漏了)", "汽油味(很|特别|非常)?(重|大|浓)",
            "caught fire", "catch(es|ing)? fire", "on fire", "burst into flames", "flames?",
            "smoke (was |is )?(coming|pouring|billowing|rising)", "smoke from", "(was|is|started|began) smoking",
            r"burning( \w+)? smell", r"smell(s|ed)? of burn\w*", "burnt smell", "smell(s|ed)? burnt",
            r"fuel leak\w*", r"(petrol|gas|gasoline|fuel) (smell|leak\w*)", "smell of (petrol|gasoline|fuel)",
        ),
    ),
    "battery": Hazard(
        phrases=("热失控", "电池(包)?鼓包", "thermal runaway", "battery (pack )?(is |was )?(swelling|swollen|bulging)"),
        parts=("电池", "电池包", "电芯", "充电口", "充电枪", "battery", "battery pack", "charg(e|ing) port"),
        signs=(
            "冒烟", "起火", "着火", "发烫", "烫手", "发热", "过热", "温度(过|很|太)高", "高温报警", "鼓包", "烧焦", "焦味", "异味",
            "漏液", "熔化", "融化", "烧坏",
            r"smok\w*", "fire", r"overheat\w*", "thermal", r"swell\w*", "swollen", r"bulg\w*", r"burn\w*", r"melt\w*",
            "(too|very|extremely|really) (hot|warm)", "heat coming", "warmth",
        ),
    ),
    # Loss of power matters at speed: a loss phrase near a driving-at-speed phrase.
    "power_loss": Hazard(
        phrases=(),
        parts=(
            "高速", "快车道", "超车", "高架", "环路", "隧道", "车速", "时速", "行驶中", "开着开着",
            r"\d+\s*(公里|码|km/?h|kph|mph)",
            "highway", "motorway", "freeway", "expressway", "fast lane", "overtaking", "passing lane", "at speed",
            "high speed", "while driving", "on the (ring road|elevated|bridge|interstate)",
        ),
        signs=(
            "没有?动力", "(失去|丢失)动力", "动力(中断|丧失|系统故障|故障)", "断动力", "加速无力", "(突然|自动|自己|直接)熄火",
            "突然断电", "断电了", "(突然|一下子)没电", "(油门|电门)(踩到底)?(没有?)?反应", "(油门|电门)踩到底", "掉速", "趴窝",
            "los(e|t|ing) (all )?power", "loss of (engine )?power", "power (loss|cut out|failure)",
            "(engine|motor|car) (cut out|stalled|died|shut down|shut off)", "lost (propulsion|acceleration|drive)",
            "no (acceleration|power|propulsion)", "(would|could|did) ?n[o']t accelerate", "stopped accelerating",
            "limp mode", "reduced power",
        ),
        near=20,
    ),
    "injury": Hazard(
        phrases=(
            "受伤", "受了伤", "[撞烫烧夹割砸]伤", "骨折", "住院", "缝了.{0,2}针", "缝针", "送医", "送到医院", "进了医院",
            "人身伤害", "伤者",
            r"injur\w*", "hospitali[sz]ed", "taken to (the )?hospital", "stitches", r"fractur\w*", "concussion", "whiplash",
            "(was|were|got|been) hurt", "broken (arm|leg|rib|bone|nose)s?",
        ),
    ),
    # The customer says it is dangerous.
    "danger": Hazard(
        phrases=(
            "危险(?!报警|警示|警告|灯|品)", "安全隐患", "影响(行车|驾驶)?安全", "差点(就|被)?(出事|出车祸|撞|追尾|翻车|没命)",
            "险些(出事|撞|追尾)", "要出人命", "出人命", "人命关天", "要命的事", "生命危险",
            "dangerous", "unsafe", "not safe to drive", "safety (risk|hazard|issue|concern|problem)s?", "life[- ]threatening",
            "(nearly|almost) (crashed|had an accident|hit|killed|rear-ended)", "could have (been )?killed",
        ),
    ),
}

# A threat of, or a step already taken towards, media exposure, a regulator or a court.
# Threats are conditional by nature ("if … I will go to the TV"), so only denial counts
# against them ("I will not go to the media"), and not when a "but" follows.
MEDIA_OR_REGULATOR: dict[str, tuple[str, ...]] = {
    "media": (
        "(?<!多)(?<!流)媒体", "曝光(?!过度|不足|补偿)", "电视台", "记者", "报社", "上新闻", "黑猫投诉", "车质网",
        r"(发|发到|挂到|放到|传到|投稿到?)[^,.!?;。\n]{0,4}(网上|论坛|微博|抖音|小红书|快手|头条|汽车之家|懂车帝)",
        r"(上|去|找|联系)[^,.!?;。\n]{0,2}(微博|抖音|小红书|快手|头条|汽车之家|懂车帝)",
        "the (media|press|news)", "social media", "journalists?", "reporters?", "newspapers?",
        "tv (station|channel|programme|program|show)", "television", "go public",
        "post(ing|ed)? (it |this |everything )?(about (it|this) )?"
        "(online|on (twitter|facebook|youtube|tiktok|weibo|douyin|reddit|instagram))",
    ),
    "regulator": (
        r"(?<!\d)12315(?!\d)", "12345(热线|政务|市民热线)", "市长热线", "消协", "消费者协会", "消保委", "消委会", "消基会",
        "消费者权益保护", "市场监管", "市场监督管理", "工商局", "工商部门", "质监局", "质检局", "缺陷产品管理中心",
        "consumer (council|association|protection|rights)", "trading standards", "ombudsman", "samr", "nhtsa",
        r"(report|complain|escalate|go)\w* (this |it |you )?to the (regulator|authorities)", "market regulation",
    ),
    "lawsuit": (
        "律师", "起诉", "法院", "诉讼", "打官司", "仲裁", "提告", "告你们", "告上法庭", "法律途径", "法律手段", "诉诸法律", "法律责任",
        "lawyers?", "attorneys?", "solicitors?", "legal (action|proceedings|steps)", "sue", "suing", "sued", "lawsuit",
        "(in|to) court", "small claims",
    ),
}

# Money back, another car or compensation (退款, 退车, 换车, 赔偿): a major complaint.
COMPENSATION: tuple[str, ...] = (
    "退款", "退钱", "退费", "退车", "退货", "退还.{0,8}(款|钱|费)", "换车", "换(一|一台|一辆|台|辆)新车", "换新车",
    "更换(新车|车辆|整车)", "调换车辆", "回购", "赔偿", "补偿", "索赔", "赔钱", "赔(给)?我", "违约金", "双倍返还",
    "(损失|费用|医药费|修车费|租车费|误工费|修理费|治疗费).{0,10}(承担|负责(?!人)|赔|报销|支付)",
    "(承担|负责|赔|报销|退还).{0,6}(损失|费用|医药费|修车费|维修费|租车费|误工费|治疗费)",
    r"refund\w*", "money back", r"reimburs\w*", r"compensat\w*", "buy ?-?back", "replace (the|my|this) (car|vehicle)",
    "(new|replacement) (car|vehicle) (instead|in exchange)", "exchange (the|my|this) (car|vehicle)", "damages",
    "cover (the|my|all) (costs?|medical|repair|rental|bills?)", "goodwill (gesture|payment|compensation)",
    "pay (for )?(my|the) (medical|hospital|repair|rental) (bills?|costs?|fees?)",
)

# Evidence of what a complaint is about: 3 = names the problem, 1 = names the area.
# The subject counts twice: it is the customer's own summary.
CATEGORY_EVIDENCE: dict[Category, dict[int, tuple[str, ...]]] = {
    "product_quality": {
        3: (
            "质量问题", "质量差", "质量不(好|行)", "故障", "缺陷", "召回", "异响", "噪音", "怪声", "漏水", "渗水", "滴水", "漏雨",
            "进水", "漏油", "渗油", "死机", "当机", "黑屏", "卡顿", "自动重启", "失灵", "抖动", "顿挫", "坏了", "不工作", "失效",
            "不制冷", "不制热", "不热", "不亮", "关不严", "打不开", "连不上", "用不了", "不能用", "无法使用", "生锈", "开裂", "掉漆",
            "起泡", "异味", "没有?动力", "动力不足", "加速无力",
            r"defect\w*", "faulty", "fault", r"malfunction\w*", "recall", r"rattl\w*", "noise", r"squeak\w*", r"leak\w*",
            "broken", "broke down", "stopped working", "(does|do|did|will|would) ?n[o']t (work|start|charge|close|open|lock)",
            r"freez\w*", "crash(es|ed)", r"rust\w*", r"crack\w*", r"vibrat\w*", "quality (issue|problem)s?",
        ),
        1: (
            "发动机", "变速箱", "刹车", "制动", "方向盘", "空调", "座椅", "车窗", "天窗", "车门", "大灯", "轮胎", "电池", "电机",
            "底盘", "车机", "中控", "屏幕", "蓝牙", "导航", "软件", "硬件", "系统", "雨刮", "密封条", "气囊", "配件", "零件", "bug",
            "engine", "gearbox", "transmission", "brakes?", "steering", r"air ?con\w*", "seats?", "windows?", "sunroof",
            "doors?", "headlights?", "tyres?", "tires?", "battery", "motor", "infotainment", "screen", "bluetooth",
            "navigation", "software", "dashboard", "glovebox", "wipers?", "airbags?", "parts?",
        ),
    },
    "service": {
        3: (
            "服务态度", "态度(差|恶劣|很差|太差|不好|冷淡|生硬|傲慢)", "爱答不理", "不理不睬", "踢皮球", "推诿", "推脱", "敷衍",
            "(没有?|未)修好", "修不好", "修了.{1,3}次", "反复维修", "返修", "(维修|修理)质量",
            "第[二三四五六七八九十几]次(到店|进店|去店|返厂|维修|修)", "等了.{0,6}(小时|钟头|天|周|星期|个月)",
            "(延迟|推迟|延期|逾期|迟迟不)交车", "交车(延迟|推迟|延期)", "一拖再拖", "骗(我|人|了)", "欺骗", "误导", "不兑现",
            "(不|没有?)回(复|消息|电话|微信|我)?", "没有?(任何)?(一个)?人(联系|回复|理|管|打|接)", "划伤", "刮伤", "划痕", "刮花",
            r"rude\w*", "unprofessional", "attitude", "ignored", "(never|nobody|no one) (called|contacted|got back|replied)",
            "(did ?n[o']t|never) (call|get) back", r"waited (for )?\w+ (hours?|days|weeks)", "late delivery",
            "delivery (delay|was delayed|date)", "delayed", "misled", "misleading", "lied", "poor workmanship",
            "(still )?not (been )?fixed", "failed to fix", "(could|did) ?n[o']t fix", r"scratch\w*", "dent(ed)?",
        ),
        1: (
            "服务", "售后", "顾问", "销售", "客服", "技师", "师傅", "前台", "预约", "等待", "交车", "提车", "到车", "沟通", "答复",
            "态度", "维修", "保养",
            "service", "advisor", "salesperson", "sales", "technician", "mechanic", "appointment", "staff", "workshop",
            "communication", "waiting", "delivery",
        ),
    },
    "price": {
        3: (
            "价格", "价钱", "收费", "多收", "加价", "差价", "报价", "结算单", "(账|帐)单", "结(账|帐)", "太贵", "贵了", "太黑", "宰客",
            "坑钱", "搭售", "强制(购买|加装|消费)", "手续费", "服务费", "工时费", r"收(了)?我.{0,2}\d",
            r"收(了)?我[^,.!?;。\n]{0,4}(块|元|钱)",
            r"price\w*", r"overcharg\w*", "charged", "bill(ed)?", "invoice", "quot(e|ed|ation)", "fees?", "expensive",
            r"discount\w*", "hidden (costs?|fees?|charges?)", "surcharge", "mark-?up",
        ),
        1: (
            "费用", "优惠", "折扣", "促销", "精品", "付款", "付钱", "多少钱", "金额", r"[￥¥]\s*\d", r"\d+\s*(元|块)",
            "costs?", "paid", "pay", r"\$\s*\d",
        ),
    },
    "other": {
        3: (
            "保险", "理赔", "定损", "贷款", "分期", "金融", "按揭", "利息", "合同纠纷", "上牌", "过户", "积分", "会员", "验证码", "登录",
            "置换",
            "insurance", "loan", r"financ\w*", "interest rate", "leas(e|ing)", "registration", "loyalty", "reward points",
            "log ?in", "password",
        ),
        1: ("合同", "二手车", "app", "应用", "contract", "account"),
    },
}

# Words that take a phrase back ("不影响安全", "not dangerous"), right before it.
NEGATION = (
    "(不|没|没有|未|无|并非|不是|不会|从未|从来没有?|从没|并没有?|并未|毫无)(太|很|算|怎么|什么|任何|一点|人|有人|任何人|是)?$",
    r"(\bnot|\bno|\bnever|\bwithout|\bnobody|\bnone|\bneither|n't)(?! only| just)(\s+\w+){0,2}\s*$",
)
# Words that make a danger a worry rather than an event ("担心会起火", "afraid of a fire").
# A bare "if"/"如果" is not one: "if I brake, the pedal goes to the floor" is a fault.
HYPOTHETICAL = (
    "如果[^,，]*会", "万一", "会不会", "是否会", "担心", "害怕", "生怕", "(?<!可)怕", "以免", "防止", "避免", "预防", "可能会",
    "what if", "in case", "afraid of", "for fear of", "worried (about|that)", "concerned (about|that)", "risk of",
    "might", "could (potentially |possibly )?be", "would be", "in the event",
)
# Words saying an issue has been dealt with ("已经修好了", "has been fixed"), unless negated...
RESOLVED = (
    "(?<!没)(?<!没有)(?<!未)(?<!不)修好", "已(经)?(修复|解决|处理好|换好)", "(?<!没)(?<!没有)(?<!未)解决了", "不响了",
    "换完以后", "更换后",
    "(?<!not )(?<!n't )(?<!never )(been |was |were |got )?(fixed|repaired|resolved|sorted)", "no longer",
)
# ...unless it came back ("修好了又坏了", "fixed, but it happened again").
RECURRED = ("又", "再次", "再一次", "还是", "仍然", "依然", "again", "came back", "recurred", "still", "returned")
# Words denying a demand ("我不是要你们赔钱"), anywhere earlier in the clause.
NO_DEMAND = (
    "不是要", "不是为了", "不要求", "不需要", "并不要求", "不图", "不求", "不用", "没要求",
    "not (asking|looking) for", "do ?n[o']t (want|need)", "no need for",
)
# A promise not to go ("我不会找媒体", "I will not go to the press") takes a threat back,
# unless a "but" follows; a wish ("不想闹到媒体") is the usual veiled threat and counts.
NO_THREAT = (
    "不会", "不打算", "没有?打算", "无意", "won't", "will not", "not going to", "no intention", "no plans? to",
)
BUT = ("但", "可是", "不过", r"\bbut\b", "however")

# Traditional characters and their Simplified forms, for folding.
TRADITIONAL_TO_SIMPLIFIED = """
車车 輛辆 輪轮 軟软 這这 個个 們们 來来 時时 說说 國国 會会 對对 門门 問问 題题 發发 髮发 經经 過过 還还 沒没 動动 態态 為为 電电 話话 買买 賣卖 務务
價价 錢钱 費费 貴贵 質质 變变 聲声 響响 燈灯 機机 體体 氣气 彈弹 傷伤 燒烧 煙烟 爐炉 熱热 溫温 險险 隱隐 號号 碼码 線线 絲丝 統统 維维 換换 實实 際际
應应 該该 從从 讓让 給给 兩两 萬万 億亿 僅仅 見见 現现 覺觉 觀观 視视 親亲 記记 訊讯 設设 許许 評评 論论 證证 識识 議议 讀读 談谈 請请 謝谢 護护 計计
訂订 認认 誤误 調调 諾诺 責责 負负 貨货 購购 資资 賠赔 償偿 賬账 帳帐 贈赠 輸输 轉转 較较 載载 輕轻 達达 遲迟 運运 進进 遠远 適适 選选 邊边 違违 遺遗
郵邮 鐘钟 錯错 鎖锁 鏡镜 鐵铁 鋼钢 銷销 長长 開开 關关 閉闭 間间 閃闪 陽阳 隊队 隨随 難难 雙双 離离 雜杂 靈灵 靜静 頁页 頂顶 項项 順顺 須须 頭头 顧顾
顯显 風风 飛飞 養养 餘余 馬马 駕驾 駛驶 騙骗 驗验 髒脏 鬥斗 麼么 黃黄 點点 齊齐 龍龙 愛爱 慶庆 懷怀 戰战 擋挡 據据 擊击 擔担 擺摆 敗败 數数 斷断 於于
書书 決决 況况 淨净 測测 濕湿 滅灭 潔洁 濾滤 滿满 無无 煩烦 營营 爭争 狀状 獨独 獲获 環环 產产 畫画 當当 療疗 盤盘 監监 眾众 確确 禮礼 種种 稱称 穩稳
競竞 節节 範范 簡简 簽签 類类 糾纠 紀纪 約约 紅红 級级 細细 組组 結结 絕绝 絡络 綠绿 網网 緊紧 緩缓 編编 縣县 總总 續续 罰罚 罵骂 聯联 聽听 職职 腦脑
腳脚 臺台 與与 舉举 舊旧 華华 葉叶 蓋盖 蘇苏 處处 衛卫 衝冲 補补 裝装 裡里 裏里 製制 複复 規规 覽览 託托 訪访 診诊 訴诉 詢询 試试 詳详 誰谁 諮咨 貼贴
財财 賓宾 賽赛 趕赶 跡迹 軌轨 輔辅 輯辑 辦办 農农 連连 週周 遊游 遞递 遷迁 鄰邻 醫医 釋释 針针 鈕钮 鋁铝 銀银 錄录 鍋锅 鍵键 鏈链 鏽锈 鑰钥 閒闲 閘闸
闆板 陣阵 陳陈 陸陆 階阶 雖虽 雞鸡 霧雾 預预 頓顿 頻频 額额 顏颜 願愿 颱台 飲饮 館馆 饋馈 騎骑 驚惊 鬆松 鬧闹 魯鲁 鮮鲜 麗丽 麥麦 黨党 齒齿 滬沪 雲云
遼辽 贛赣 晉晋 陝陕 閩闽 粵粤 寧宁 瓊琼 廣广 東东 漢汉 蘭兰 廈厦 壞坏 報报 場场 塊块 壓压 墊垫 備备 復复 夠够 夾夹 奪夺 學学 寶宝 審审 寫写 導导 專专
將将 層层 屬属 歲岁 島岛 幣币 帶带 幫帮 幹干 廠厂 廳厅 張张 強强 後后 徑径 恆恒 悶闷 惡恶 慘惨 慣惯 憑凭 懶懒 戲戏 擴扩 掃扫 掛挂 揚扬 損损 搖摇 搶抢
撥拨 擁拥 擠挤 攔拦 攜携 敵敌 暫暂 曆历 歷历 條条 極极 構构 槍枪 樂乐 標标 樣样 樓楼 橋桥 檔档 檢检 櫃柜 權权 歡欢 歸归 殘残 殼壳 毀毁 減减 溝沟 滾滚
漸渐 濃浓 灑洒 災灾 煉炼 燙烫 牆墙 獎奖 畢毕 異异 盜盗 盡尽 礎础 礙碍 禍祸 積积 窩窝 竊窃 筆笔 築筑 籃篮 糧粮 紙纸 純纯 綁绑 綜综 緒绪 緣缘 縮缩 績绩
繼继 纜缆 罷罢 聰聪 肅肃 脈脉 膠胶 臉脸 艙舱 藝艺 藍蓝 蟲虫 術术 襯衬 訓训 詐诈 詭诡 誇夸 誌志 語语 課课 諸诸 謊谎 謠谣 譯译 豐丰 貓猫 貢贡 販贩 貪贪
貸贷 賀贺 賴赖 贊赞 趙赵 踐践 躍跃 軍军 輩辈 轟轰 辭辞 邏逻 醜丑 釣钓 鈴铃 鉛铅 銳锐 鋪铺 錶表 鍊炼 鎮镇 閱阅 闖闯 陰阴 隻只 韓韩 頸颈 顆颗 颳刮 飄飘
飽饱 餅饼 騰腾 骯肮 鬍胡 魚鱼 鳥鸟 鹽盐 麵面 齡龄 龜龟 準准 剎刹 劃划 劑剂 勞劳 勢势 勵励 區区 協协 卻却 厭厌 參参 叢丛 員员 啟启 喪丧 單单 嗎吗 嘆叹
嚇吓 嚴严 囑嘱 圍围 圖图 團团 塗涂 塵尘 墜坠 壯壮 壽寿 奮奋 婦妇 媽妈 孫孙 寬宽 尋寻 嶺岭 幾几 廢废 廟庙 彎弯 徹彻 憂忧 憶忆 懼惧 戶户 拋抛 挾挟 捨舍
掙挣 揀拣 撐撑 撿捡 擇择 擬拟 擾扰 攝摄 斬斩 昇升 晝昼 暈晕 曉晓 朧胧 桿杆 棄弃 棟栋 榮荣 槓杠 樁桩 樞枢 檯台 櫥橱 欄栏 氫氢 沖冲 洩泄 涼凉 淚泪 渦涡
溼湿 滯滞 漲涨 潛潜 澤泽 濟济 濫滥 瀉泻 灣湾 烏乌 燜焖 燭烛 爛烂 犧牺 猶犹 獄狱 瑣琐 瘋疯 皺皱 盞盏 睜睁 瞞瞒 礦矿 祿禄 禦御 稅税 窮穷 窯窑 簾帘 籌筹
籠笼 緻致 縫缝 繩绳 繫系 繳缴 罈坛 羅罗 翹翘 聳耸 膽胆 膚肤 艱艰 莊庄 萊莱 蔣蒋 蕭萧 薦荐 薩萨 藥药 蘋苹 虛虚 虧亏 蝕蚀 蠟蜡 褲裤 襖袄 訝讶 訣诀 註注
詞词 誕诞 誘诱 誼谊 謀谋 謹谨 譜谱 讚赞 豎竖 豬猪 賄贿 賊贼 賜赐 賞赏 賤贱 賦赋 賺赚 贏赢 贓赃 趨趋 踴踊 蹤踪 軸轴 輻辐 轄辖 辮辫 遙遥 鄉乡 醬酱 釀酿
鈔钞 鉤钩 銅铜 鋒锋 錦锦 鍛锻 鎊镑 鏟铲 鑄铸 閥阀 闊阔 隸隶 韋韦 頌颂 領领 頒颁 頗颇 飢饥 餓饿 餵喂 駁驳 駐驻 驅驱 驟骤 鬚须 鬱郁 鴨鸭 鵝鹅 黴霉 齋斋
丟丢 傳传 兌兑 別别 勁劲 師师 懸悬 轂毂 滲渗 著着 紛纷 脫脱 訟讼 諉诿 聞闻
"""

# --- folding --------------------------------------------------------------------------

_FOLD = {ord(pair[0]): pair[1] for pair in TRADITIONAL_TO_SIMPLIFIED.split()}
_FOLD.update({code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)})  # full-width ASCII
_FOLD[0x3000] = " "


def fold(text: str) -> str:
    """Text for matching: lower case, full-width forms half-width, Traditional characters
    Simplified. One character for one, so a match in the folded text is at the same place
    in the original."""
    return "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text).translate(_FOLD)


def _compile(terms: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern for a list of terms; Latin terms match whole words only."""
    alternatives = []
    for term in sorted(terms, key=len, reverse=True):  # longer phrases first
        term = term.translate(_FOLD)
        if re.search("[a-z]", re.sub(r"\\.", "", term)):
            term = f"(?<![a-z0-9])(?:{term})(?![a-z])"
        alternatives.append(f"(?:{term})")
    return re.compile("|".join(alternatives) or "(?!)")


# --- results --------------------------------------------------------------------------

@dataclass(frozen=True)
class ClassificationResult:
    category: Category
    severity: Severity
    safety: bool
    media_or_regulator: bool
    demands_compensation: bool
    reasons: list[str]
    possible_safety: bool = False  # a safety risk possible but not certain: critical, to be confirmed
    confidence: float = 1.0  # of the category, 0-1
    evidence: tuple[Evidence, ...] = ()


class _Hit(NamedTuple):
    start: int
    end: int
    gap: str = ""  # between part and sign, for hazards found as a pair


_SENTENCE_END = re.compile(r"[\n。！？!?；;]|\.\s")
_CLAUSE_END = re.compile(r"[\n。！？!?；;，,、:：]|\.\s")
_CJK = re.compile(r"[\u3400-\u9fff]")
_QUOTE_HEADER = re.compile(r"^(在.{4,80}写道|on .{4,160} wrote)[:：]?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class _Compiled:
    hazards: dict[str, tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str], int]]
    media: dict[str, re.Pattern[str]]
    compensation: re.Pattern[str]
    evidence: dict[Category, dict[int, re.Pattern[str]]]
    negation: re.Pattern[str]
    gap_negation: re.Pattern[str]
    hypothetical: re.Pattern[str]
    resolved: re.Pattern[str]
    recurred: re.Pattern[str]
    no_demand: re.Pattern[str]
    no_threat: re.Pattern[str]
    but: re.Pattern[str]


@lru_cache(maxsize=1)
def _rules() -> _Compiled:
    return _Compiled(
        hazards={
            name: (_compile(h.phrases), _compile(h.parts), _compile(h.signs), h.near)
            for name, h in SAFETY.items()
        },
        media={name: _compile(terms) for name, terms in MEDIA_OR_REGULATOR.items()},
        compensation=_compile(COMPENSATION),
        evidence={
            category: {weight: _compile(terms) for weight, terms in weights.items()}
            for category, weights in CATEGORY_EVIDENCE.items()
        },
        negation=re.compile("|".join(f"(?:{n})" for n in NEGATION)),
        gap_negation=re.compile(r"(不|没|没有|未|并没有?|从未|从没|\bnot|\bnever|n't|\bno)\s*$"),
        hypothetical=_compile(HYPOTHETICAL),
        resolved=_compile(RESOLVED),
        recurred=_compile(RECURRED),
        no_demand=_compile(NO_DEMAND),
        no_threat=_compile(NO_THREAT),
        but=re.compile("|".join(BUT)),
    )


# --- context --------------------------------------------------------------------------

def _clause_before(text: str, start: int, size: int = 30) -> str:
    lo = max(0, start - size)
    ends = [m.end() for m in _CLAUSE_END.finditer(text, lo, start)]
    return text[ends[-1] if ends else lo : start]


def _window_end(text: str, end: int, size: int = 60) -> int:
    """End of the words that follow a phrase and still speak of it: same paragraph, near."""
    stop = text.find("\n", end)
    return min(end + size, len(text) if stop < 0 else stop)


def _snippet(original: str, hit: _Hit) -> str:
    return " ".join(original[hit.start : hit.end].split())[:60]


def _hazard_hits(
    text: str, phrases: re.Pattern[str], parts: re.Pattern[str], signs: re.Pattern[str], near: int,
) -> Iterator[_Hit]:
    """Standalone phrases, then each part with the nearest sign after it and before it."""
    for match in phrases.finditer(text):
        yield _Hit(match.start(), match.end())
    for part in parts.finditer(text):
        reach = 3 * near
        for sign in signs.finditer(text, part.end(), min(len(text), part.end() + reach)):
            gap = text[part.end() : sign.start()]
            if _close(gap, near):
                yield _Hit(part.start(), sign.end(), gap)
                break
        before = [
            sign for sign in signs.finditer(text, max(0, part.start() - reach), part.start())
            if _close(text[sign.end() : part.start()], near)
        ]
        if before:
            yield _Hit(before[-1].start(), part.end())


def _close(gap: str, near: int) -> bool:
    return not _SENTENCE_END.search(gap) and len(gap) <= (near if _CJK.search(gap) else 3 * near)


def _discount(text: str, hit: _Hit, rules: _Compiled) -> str | None:
    """Why a safety phrase does not describe a danger happening now, if it does not."""
    before = _clause_before(text, hit.start)
    if rules.negation.search(before) or rules.gap_negation.search(hit.gap):
        return "negated"
    if rules.hypothetical.search(before):
        return "hypothetical"
    stop = _window_end(text, hit.end)
    for resolved in rules.resolved.finditer(text, hit.end, stop):
        if rules.negation.search(_clause_before(text, resolved.start())):
            continue  # "没修好", "not fixed"
        return None if rules.recurred.search(text, resolved.end(), stop) else "resolved"
    return None


def own_words(text: str) -> str:
    """The sender's own words: quoted history ("> …", "On … wrote:") left out."""
    lines = []
    for line in text.split("\n"):
        if _QUOTE_HEADER.match(line.strip()):
            break
        if not line.lstrip().startswith(">"):
            lines.append(line)
    return "\n".join(lines)


# --- classification -------------------------------------------------------------------

def classify(subject: str, text: str) -> ClassificationResult:
    """Category, severity and the deciding flags of a complaint, with the phrases that
    decided them. Critical: a safety risk happening now, or media / regulator / court;
    major: a demand for money back, another car or compensation."""
    rules = _rules()
    original = f"{subject}\n{own_words(text)}"
    folded = fold(original)
    reasons: list[str] = []
    hazards = _hazards(folded, original, rules, reasons)
    media = _threat(folded, original, rules, reasons)
    compensation = _demand(folded, original, rules, reasons)
    category = _category(folded, original, len(subject), hazards, rules, reasons)
    severity: Severity = "general"
    if hazards or media:
        severity = "critical"
        reasons.append("severity critical: " + " and ".join(
            what for what, found in (("safety risk", hazards), ("media/regulator/court", media)) if found
        ))
    elif compensation:
        severity = "major"
        reasons.append("severity major: demands refund, replacement or compensation")
    return ClassificationResult(category, severity, bool(hazards), media, compensation, list(dict.fromkeys(reasons)))


def _hazards(folded: str, original: str, rules: _Compiled, reasons: list[str]) -> list[str]:
    """The hazards described as happening: not denied, not a worry, not fixed for good."""
    found: list[str] = []
    for name, (phrases, parts, signs, near) in rules.hazards.items():
        for hit in _hazard_hits(folded, phrases, parts, signs, near):
            why = _discount(folded, hit, rules)
            if why is None:
                found.append(name)
                reasons.append(f"safety ({name}): {_snippet(original, hit)}")
                break
            reasons.append(f"not counted, {why}: {_snippet(original, hit)}")
    return found


def _threat(folded: str, original: str, rules: _Compiled, reasons: list[str]) -> bool:
    for name, pattern in rules.media.items():
        for match in pattern.finditer(folded):
            hit = _Hit(match.start(), match.end())
            promised_not = rules.no_threat.search(_clause_before(folded, hit.start, 40))
            if promised_not and not rules.but.search(folded, hit.end, _window_end(folded, hit.end, 20)):
                reasons.append(f"not counted, no threat: {_snippet(original, hit)}")
                continue
            reasons.append(f"media_or_regulator ({name}): {_snippet(original, hit)}")
            return True
    return False


def _demand(folded: str, original: str, rules: _Compiled, reasons: list[str]) -> bool:
    for match in rules.compensation.finditer(folded):
        hit = _Hit(match.start(), match.end())
        if rules.no_demand.search(_clause_before(folded, hit.start, 40)):
            reasons.append(f"not counted, no demand: {_snippet(original, hit)}")
            continue
        reasons.append(f"compensation: {_snippet(original, hit)}")
        return True
    return False


def _category(
    folded: str, original: str, subject_end: int, hazards: list[str], rules: _Compiled, reasons: list[str],
) -> Category:
    """The category with the strongest evidence: what the complaint is about, not every
    topic it mentions. The subject counts twice; a safety hazard is a product fault."""
    scores: dict[Category, int] = dict.fromkeys(CATEGORY_EVIDENCE, 0)
    phrases: dict[Category, list[str]] = {category: [] for category in CATEGORY_EVIDENCE}
    for category, weights in rules.evidence.items():
        for weight, pattern in weights.items():
            for match in pattern.finditer(folded):
                scores[category] += weight * (2 if match.start() < subject_end else 1)
                if weight > 1:
                    phrases[category].append(original[match.start() : match.end()])
    scores["product_quality"] += 6 * len(hazards)
    phrases["product_quality"] += [f"{name} hazard" for name in hazards]
    best = max(scores, key=lambda category: scores[category])
    if scores[best] == 0:
        reasons.append("category other: no evidence of product, service or price")
        return "other"
    others = "".join(f"; {category} {score}" for category, score in scores.items() if category != best and score)
    shown = ", ".join(dict.fromkeys(phrases[best])) or "topic words only"
    reasons.append(f"category {best}: {shown} (score {scores[best]}{others})")
    return best


# --- language -------------------------------------------------------------------------

def detect_language(text: str) -> Language:
    """zh, zh-Hant or en. Chinese when Chinese characters outweigh Latin words; Traditional
    when more characters are specific to Traditional than to Simplified script (in Big5
    but not GB2312, and the reverse)."""
    han = [ch for ch in own_words(text) if _CJK.match(ch)]
    latin_words = len(re.findall(r"[A-Za-z]{2,}", text))
    if not han or 2 * len(han) < latin_words:
        return "en"
    traditional = sum(1 for ch in han if _script(ch) == "traditional")
    simplified = sum(1 for ch in han if _script(ch) == "simplified")
    return "zh-Hant" if traditional > simplified else "zh"


@lru_cache(maxsize=8192)
def _script(char: str) -> str | None:
    in_gb = _encodes(char, "gb2312")
    in_big5 = _encodes(char, "big5")
    if in_gb and not in_big5:
        return "simplified"
    if in_big5 and not in_gb:
        return "traditional"
    return None


def _encodes(char: str, codec: str) -> bool:
    try:
        char.encode(codec)
    except UnicodeEncodeError:
        return False
    return True
