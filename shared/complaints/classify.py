"""Explainable classification of a complaint (policy.md §4, docs/classification.md): its
category, its severity, and the flags that decide severity: a safety risk (certain, or
possible and to be confirmed), a threat of media, regulator or court, a demand for money
back or another car.

The engine weighs evidence; the rules are data (``rules/*.toml``, see ``rulebook``), which a
brand extends in its policy. Text and terms are folded before matching (lower case,
half-width, Traditional characters to Simplified, see ``fold``), so a term is written once
and matches both scripts. The text is read by sentence and clause: a safety phrase counts
unless its clause denies it, imagines it or says it was fixed for good; a failure sign
weighs more with a driving context or fear around it, less behind a hedge. Every decision
keeps its evidence (the customer's own phrases) and a confidence.
"""

from __future__ import annotations

import re
import re._parser as _sre_parser  # the standard library's own pattern parser, to read a term's first characters
from bisect import bisect_left, bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

from .models import Category, Evidence, Severity
from .rulebook import CATEGORIES, HazardRules, Rulebook, Weights, rulebook

MAX_CHARS = 64 * 1024  # only the first 64 KB of text is classified (the raw mail is kept whole)

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
業业 臨临 亂乱 儀仪 內内 冊册 則则 勸劝 爾尔 庫库 懇恳 擰拧 曠旷 爍烁 竄窜 紋纹 織织 綿绵 脅胁 輿舆 飾饰
債债 剮剐 嗚呜 嘯啸 噴喷 渾浑 終终 討讨 諷讽 躥蹿 鈑钣 邁迈 厲厉 喚唤 錨锚 廂厢 劇剧
"""

# Cantonese colloquial characters and the Mandarin words they stand for, one for one, so a
# Hong Kong mail meets the same terms ("螺絲鬆咗" as 螺丝松了, "唔敢再揸" as 不敢再开,
# "差啲甩轆" as 差点甩轮). Only characters with no other common Mandarin reading.
CANTONESE_TO_MANDARIN = "咗了 冇没 唔不 喺在 係是 啲点 嘅的 揸开 轆轮 佢他 嚟来 睇看 攞拿 俾给 哋们 搵找"

# --- folding --------------------------------------------------------------------------

_FOLD = {ord(pair[0]): pair[1] for pair in (TRADITIONAL_TO_SIMPLIFIED + CANTONESE_TO_MANDARIN).split()}
_FOLD.update({code: chr(code - 0xFEE0) for code in range(0xFF01, 0xFF5F)})  # full-width ASCII
_FOLD[0x3000] = " "


def fold(text: str) -> str:
    """Text for matching: lower case, full-width forms half-width, Traditional characters
    Simplified. One character for one, so a match in the folded text is at the same place
    in the original."""
    lower = text.lower()
    if len(lower) != len(text):  # a letter whose lower case is longer (İ): keep it as it is
        lower = "".join(ch.lower() if len(ch.lower()) == 1 else ch for ch in text)
    return lower.translate(_FOLD)


class Lexicon:
    """A list of terms as patterns, fast to search: the terms that start with a known
    character (most, once a leading group or class is spelled out) form one alternation
    that the regular-expression engine skips through in C; the few others get a look at
    their possible first characters. Latin terms match whole words only."""

    def __init__(self, terms: list[str]) -> None:
        fast: list[tuple[str, bool, str]] = []
        slow: list[str] = []
        for term in sorted(terms, key=len, reverse=True):  # longer phrases first
            term = term.translate(_FOLD)
            latin = bool(re.search("[a-z]", re.sub(r"\\.", "", term)))
            spelled = _spell_out(term)
            if spelled is None:
                slow.append(f"(?<![a-z0-9])(?:{term})(?![a-z])" if latin else term)
            else:
                # The whole-word check moves behind the first character, which it then includes.
                fast.extend((first, latin, f"{rest}(?![a-z])" if latin else rest) for first, rest in spelled)
        # Grouped by first character, each group one plain character then its rests: the
        # engine finds the first characters of such an alternation at once, and at a place
        # tries only the rests of the character found there (the order within a group kept).
        # A Latin group checks once, behind its first character, that a word starts there.
        groups: dict[tuple[str, bool], list[str]] = {}
        for first, latin, rest in fast:
            groups.setdefault((first, latin), []).append(rest)
        self.fast = re.compile("|".join(
            f"{first}{'(?<![a-z0-9].)' if latin else ''}(?:{'|'.join(rests)})" for (first, latin), rests in groups.items()
        )) if fast else None
        firsts: set[str] | None = set()
        for term in slow:
            found = _first_chars(term)
            firsts = None if firsts is None or found is None else firsts | found
        look = f"(?=[{''.join(sorted(firsts))}])" if firsts else ""
        self.slow = re.compile(look + "(?:" + "|".join(f"(?:{t})" for t in slow) + ")") if slow else None

    def finditer(self, text: str, pos: int = 0, endpos: int | None = None) -> Iterator[re.Match[str]]:
        end = len(text) if endpos is None else endpos
        if self.slow is None or self.fast is None:
            pattern = self.fast or self.slow
            if pattern is not None:
                yield from pattern.finditer(text, pos, end)
            return
        matches = sorted([*self.fast.finditer(text, pos, end), *self.slow.finditer(text, pos, end)],
                         key=lambda m: (m.start(), -m.end()))
        last = -1
        for match in matches:
            if match.start() >= last:
                last = match.end() if match.end() > match.start() else match.start() + 1
                yield match

    def search(self, text: str, pos: int = 0, endpos: int | None = None) -> re.Match[str] | None:
        end = len(text) if endpos is None else endpos
        found = [m for p in (self.fast, self.slow) if p is not None and (m := p.search(text, pos, end))]
        return min(found, key=lambda m: (m.start(), -m.end())) if found else None


_SPECIAL = set("()[]{}\\.^$*+?|")
_LOOKBEHIND = re.compile(r"^\(\?<[!=]((?:[^()\\]|\\[a-z])*)\)")
_SIMPLE_GROUP = re.compile(r"^\(((?:[^()\[\]\\]|\\[a-z])*)\)(\??)(?![*+{])")
_SIMPLE_CLASS = re.compile(r"^\[([^\]\\^-]+)\](?![?*+{])")


def _spell_out(term: str, depth: int = 0) -> list[tuple[str, str]] | None:
    """The term as (first character, rest) pairs whose union matches what it matches, or
    None when it does not start simply (a leading lookbehind is moved behind the first
    character; a leading group of words or a class of characters is spelled out)."""
    if depth > 8 or _top_level_bar(term):
        return None
    if term.startswith("\\d") and term[2:3] not in ("?", "*", "{"):
        rest = "\\d*" + term[3:] if term[2:3] == "+" else term[2:]
        return [(digit, rest) for digit in "0123456789"]
    if term[:1] == "\\" and len(term) > 1 and not term[1].isalnum() and term[2:3] not in ("?", "*", "+", "{"):
        return [(term[:2], term[2:])]
    if term and term[0] not in _SPECIAL and (len(term) == 1 or term[1] not in "?*+{"):
        return [(re.escape(term[0]) if term[0] in " #" else term[0], term[1:])]
    behind = _LOOKBEHIND.match(term)
    if behind:
        inner = _spell_out(term[behind.end() :], depth + 1)
        if inner is None:
            return None
        kind = term[2:4]  # "<!" or "<="
        return [(first, f"(?{kind}{behind.group(1)}.){rest}") for first, rest in inner]
    group = _SIMPLE_GROUP.match(term)
    if group:
        rest = term[group.end() :]
        options = group.group(1).split("|") + ([""] if group.group(2) else [])
        spelled: list[tuple[str, str]] = []
        for option in options:
            inner = _spell_out(option + rest, depth + 1) if option + rest else None
            if inner is None:
                return None
            spelled.extend(inner)
        return spelled
    klass = _SIMPLE_CLASS.match(term)
    if klass:
        rest = term[klass.end() :]
        return [(ch, rest) for ch in klass.group(1)] if all(ch not in _SPECIAL for ch in klass.group(1)) else None
    return None


def _top_level_bar(term: str) -> bool:
    depth, escaped, in_class = 0, False, False
    for ch in term:
        if escaped:
            escaped = False
        elif ch == "\\":
            escaped = True
        elif in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            return True
    return False


def _compile(terms: list[str]) -> Lexicon:
    return Lexicon(terms)


def _first_chars(term: str) -> set[str] | None:
    """The characters (as character-class items) a term's matches can start with, or None
    when that cannot be told simply."""
    try:
        parsed = _sre_parser.parse(term)
    except re.error:
        return None
    return _firsts(list(parsed))


def _firsts(ops: list[Any]) -> set[str] | None:
    found: set[str] = set()
    for op, av in ops:
        name = str(op)
        if name in ("ASSERT", "ASSERT_NOT", "AT"):
            continue  # a lookaround or an anchor consumes nothing
        if name == "LITERAL":
            return found | {re.escape(chr(av))}
        if name == "IN":
            items = set()
            for kind, value in av:
                if str(kind) == "LITERAL":
                    items.add(re.escape(chr(value)))
                elif str(kind) == "RANGE":
                    items.add(f"{re.escape(chr(value[0]))}-{re.escape(chr(value[1]))}")
                elif str(kind) == "CATEGORY" and str(value) in _CATEGORY_ITEMS:
                    items.add(_CATEGORY_ITEMS[str(value)])
                else:
                    return None
            return found | items
        if name == "SUBPATTERN":
            inner = _firsts(list(av[3]))
            return None if inner is None else found | inner
        if name == "BRANCH":
            union: set[str] = set()
            for branch in av[1]:
                inner = _firsts(list(branch))
                if inner is None:
                    return None
                union |= inner
            return found | union
        if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            inner = _firsts(list(av[2]))
            if inner is None:
                return None
            found |= inner
            if av[0] >= 1:
                return found
            continue  # optional: what follows may start the match too
        return None
    return None  # the term can match nothing: no prefilter


_CATEGORY_ITEMS = {"CATEGORY_DIGIT": r"\d", "CATEGORY_WORD": r"\w", "CATEGORY_SPACE": r"\s"}


def _plain(terms: list[str]) -> re.Pattern[str]:
    """One pattern for terms that carry their own anchors (``$``, ``^``, ``\\b``)."""
    return re.compile("|".join(f"(?:{t.translate(_FOLD)})" for t in terms) or "(?!)")


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
    confidence: float = 1.0  # of the decision, 0-1 (the category's margin, capped when safety or a threat is uncertain)
    evidence: tuple[Evidence, ...] = ()


class _Hit(NamedTuple):
    start: int
    end: int
    gap: str = ""  # between part and sign, for hazards found as a pair
    vague: bool = False  # found with a vague sign
    phrase: bool = False  # a phrase that says the hazard alone


_SENTENCE_END = re.compile(r"[\n。！？!?；;]|(?<!\d)\.\s")  # "1. " numbers a list item, it ends no sentence
_CLAUSE_END = re.compile(r"[\n。！？!?；;，,、:：]|\.\s")
_CJK = re.compile(r"[\u3400-\u9fff]")
_QUOTE_HEADER = re.compile(r"^(在.{4,80}写道|on .{4,160} wrote)[:：]?\s*$", re.IGNORECASE)
_FORWARD_SUBJECT = re.compile(r"^\s*(fwd?|fw|转发|轉寄|转寄)\s*[:：]", re.IGNORECASE)


# --- compiled rules -------------------------------------------------------------------

@dataclass(frozen=True)
class _Hazard:
    phrases: Lexicon
    parts: Lexicon
    signs: Lexicon
    vague: Lexicon
    vague_phrases: Lexicon
    near: int
    needs_context: bool
    net: bool
    not_between: Lexicon


@dataclass(frozen=True)
class _Compiled:
    hazards: dict[str, _Hazard]
    context: Lexicon
    fear: Lexicon
    hedge: Lexicon
    no_danger: Lexicon
    elsewhere: Lexicon
    standstill: Lexicon
    threats: dict[str, Lexicon]
    ruled_out: Lexicon
    but: re.Pattern[str]
    reported: Lexicon
    adopted: Lexicon
    demand: Lexicon
    no_demand: Lexicon
    evidence: dict[Category, tuple[tuple[Lexicon, float], ...]]
    asks: Lexicon
    main: Lexicon
    set_aside: Lexicon
    negation: re.Pattern[str]
    gap_negation: re.Pattern[str]
    hypothetical: Lexicon
    resolved: Lexicon
    recurred: Lexicon
    reply_header: re.Pattern[str]
    forward_header: re.Pattern[str]
    own_reference: re.Pattern[str]
    weights: Weights


def _hazard(rules: HazardRules) -> _Hazard:
    return _Hazard(_compile(rules.phrases), _compile(rules.parts), _compile(rules.signs), _compile(rules.vague_signs),
                   _compile(rules.vague_phrases), rules.near, rules.needs_context, rules.net,
                   _compile(rules.not_between))


def _evidence(book: Rulebook, category: Category) -> tuple[tuple[Lexicon, float], ...]:
    terms, weights = book.category.of(category), book.weights
    return ((_compile(terms.strong), weights.category_strong), (_compile(terms.medium), weights.category_medium),
            (_compile(terms.weak), weights.category_weak))


def _compile_book(book: Rulebook) -> _Compiled:
    cues, threats, reading = book.safety.cues, book.threats, book.reading
    return _Compiled(
        hazards={name: _hazard(h) for name, h in book.safety.hazards.items()},
        context=_compile(cues.driving_context), fear=_compile(cues.fear), hedge=_compile(cues.hedges),
        no_danger=_compile(cues.no_danger), elsewhere=_compile(cues.elsewhere),
        standstill=_compile(cues.standstill),
        threats={kind: _compile(getattr(threats.kinds, kind)) for kind in ("media", "regulator", "lawsuit")},
        ruled_out=_compile(threats.cues.ruled_out), but=_plain(threats.cues.but), reported=_compile(threats.cues.reported),
        adopted=_compile(threats.cues.adopted),
        demand=_compile(book.demand.terms), no_demand=_compile(book.demand.denied),
        evidence={c: _evidence(book, c) for c in CATEGORIES},
        asks=_compile(book.category.asks.cues), main=_compile(book.category.asks.main),
        set_aside=_compile(book.category.asks.set_aside),
        negation=_plain(reading.negation), gap_negation=_plain(reading.gap_negation),
        hypothetical=_compile(reading.hypothetical), resolved=_compile(reading.resolved), recurred=_compile(reading.recurred),
        reply_header=_plain(reading.reply_header), forward_header=_plain(reading.forward_header),
        own_reference=_plain(reading.own_reference),
        weights=book.weights,
    )


_BY_BOOK: dict[int, tuple[Rulebook, _Compiled]] = {}


def _compiled(rules: Rulebook | Mapping[str, Any] | None) -> _Compiled:
    """Compiled once per rulebook: the shipped one, or a brand's overlay of it."""
    book = rules if isinstance(rules, Rulebook) else rulebook(dict(rules) if rules else None)
    kept = _BY_BOOK.get(id(book))
    if kept is None or kept[0] is not book:
        if len(_BY_BOOK) > 32:
            _BY_BOOK.clear()
        kept = _BY_BOOK[id(book)] = (book, _compile_book(book))
    return kept[1]


# --- reading --------------------------------------------------------------------------

class _Text:
    """The folded text with its sentences, for looking around a phrase."""

    def __init__(self, original: str, folded: str, subject_end: int) -> None:
        self.original = original
        self.folded = folded
        self.subject_end = subject_end
        self.forward_from = 0  # where a forwarded customer mail starts (0: none); above it, the forwarder's note
        self.starts = [0, *(m.end() for m in _SENTENCE_END.finditer(self.folded))]

    def sentence(self, pos: int) -> tuple[int, int]:
        i = bisect_right(self.starts, pos) - 1
        return self.starts[i], self.starts[i + 1] if i + 1 < len(self.starts) else len(self.folded)

    def around(self, start: int, end: int) -> tuple[int, int]:
        """The sentence of a phrase with the one before and the one after."""
        lo, hi = self.sentence(start)
        lo = self.sentence(max(0, lo - 1))[0] if lo else lo
        hi = self.sentence(hi)[1] if hi < len(self.folded) else hi
        return max(lo, self.subject_end + 1 if start > self.subject_end else 0), hi

    def clause_before(self, start: int, size: int = 30) -> str:
        lo = max(0, start - size)
        ends = [m.end() for m in _CLAUSE_END.finditer(self.folded, lo, start)]
        return self.folded[ends[-1] if ends else lo : start]

    def window_end(self, end: int, size: int = 60) -> int:
        """End of the words that follow a phrase and still speak of it: same paragraph, near."""
        stop = self.folded.find("\n", end)
        return min(end + size, len(self.folded) if stop < 0 else stop)

    def snippet(self, start: int, end: int) -> str:
        return " ".join(self.original[start:end].split())[:80]


def _customer_words(subject: str, text: str, rules: _Compiled) -> tuple[str, str, str, int]:
    """The words that count (as written and folded), the quoted words that do not, and
    where a forwarded mail starts in the first (0: none). A forwarded customer mail counts;
    a quoted reply history does not, nor any quoted block that is our own mail (it carries
    a case number or our acknowledgement), even inside a forward."""
    forwarding = bool(_FORWARD_SUBJECT.match(subject))
    counted: list[tuple[str, str]] = []
    quoted: list[str] = []
    block: list[tuple[str, str]] = []
    block_counts = True

    def close() -> None:
        if block:
            ours = rules.own_reference.search("\n".join(f for _, f in block))
            if block_counts and not ours:
                counted.extend(block)
            else:
                quoted.extend(line for line, _ in block)
            block.clear()

    def unquoted(line: str, folded: str) -> tuple[str, str]:
        cut = len(line) - len(line.lstrip("> "))
        return line[cut:], folded[cut:]

    in_block = False
    forward_at = 0
    for line, folded in zip(text.split("\n"), fold(text).split("\n"), strict=True):
        bare = folded.strip()
        header = len(bare) < 240  # a header line is short
        if header and rules.forward_header.search(bare):
            close()
            if not forward_at and any(c.strip() for c, _ in counted):
                forward_at = len("\n".join(c for c, _ in counted)) + 1
            in_block, block_counts = True, True
            continue
        if header and (rules.reply_header.search(bare) or _QUOTE_HEADER.match(bare)):
            close()
            in_block, block_counts = True, forwarding
            continue
        is_quote = line.lstrip().startswith(">")
        if in_block:
            block.append(unquoted(line, folded) if is_quote else (line, folded))
        elif is_quote and not forwarding:
            quoted.append(line)
        else:
            counted.append(unquoted(line, folded) if is_quote else (line, folded))
    close()
    return ("\n".join(c for c, _ in counted), "\n".join(f for _, f in counted), "\n".join(quoted), forward_at)


# --- classification -------------------------------------------------------------------

@dataclass
class _Findings:
    reasons: list[str]
    evidence: list[Evidence]

    def add(self, kind: str, phrase: str, weight: float, reason: str | None = None) -> None:
        if len(self.evidence) < 60:
            self.evidence.append(Evidence(kind=kind, phrase=phrase, weight=round(weight, 2)))
        if reason:
            self.reasons.append(reason)


def classify(subject: str, text: str, rules: Rulebook | Mapping[str, Any] | None = None) -> ClassificationResult:
    """Category, severity and the deciding flags of a complaint, with the phrases that
    decided them. Critical: a safety risk happening now (or possibly: then flagged to be
    confirmed), or media / regulator / court; major: a demand for money back, another car
    or compensation. ``rules``: a brand's overlay of the shipped rules (its policy's
    ``classification``), or a built ``Rulebook``."""
    compiled = _compiled(rules)
    subject = subject[:1000]
    counted, folded, quoted, forward_at = _customer_words(subject, text[:MAX_CHARS], compiled)
    doc = _Text(f"{subject}\n{counted}", f"{fold(subject)}\n{folded}", len(subject))
    doc.forward_from = len(subject) + 1 + forward_at if forward_at else 0
    found = _Findings([], [])
    clear, possible, defects = _safety(doc, compiled, found)
    threat, reported = _threat(doc, compiled, found)
    if quoted:
        _note_quoted(quoted, compiled, found)
    compensation = _demand(doc, compiled, found)
    category, confidence, weighed = _category(doc, compiled, found, defects)
    weights = compiled.weights
    severity: Severity = "general"
    possible_safety = bool(possible) and not clear
    if clear or possible_safety or threat:
        severity = "critical"
        why = [what for what, yes in (("safety risk", clear), ("possible safety risk — please confirm", possible_safety),
                                      ("media/regulator/court", threat)) if yes]
        found.reasons.append("severity critical: " + " and ".join(why))
    elif compensation and (category in ("product_quality", "service") or not weighed):
        # policy §4: a product or service dispute with a demand; a refund of a fee (price) or a
        # deposit (other) is not one
        severity = "major"
        found.reasons.append("severity major: demands refund, replacement or compensation")
    if possible_safety:
        confidence = min(confidence, weights.possible_safety_confidence)
    if reported and not threat:
        confidence = min(confidence, weights.reported_threat_confidence)
    return ClassificationResult(
        category, severity, bool(clear), threat, compensation, list(dict.fromkeys(found.reasons)),
        possible_safety=possible_safety, confidence=round(confidence, 2), evidence=tuple(found.evidence))


def _signs_near(doc: _Text, pattern: Lexicon, parts: list[re.Match[str]], reach: int) -> tuple[list[int], list[re.Match[str]]]:
    """The signs within reach of some part: only the text around the parts is read."""
    spans: list[list[int]] = []
    for part in parts:
        lo, hi = max(0, part.start() - reach - 40), min(len(doc.folded), part.end() + reach + 40)
        if spans and lo <= spans[-1][1]:
            spans[-1][1] = max(spans[-1][1], hi)
        else:
            spans.append([lo, hi])
    matches = [m for lo, hi in spans for m in pattern.finditer(doc.folded, lo, hi)]
    return [m.start() for m in matches], matches


def _hazard_hits(doc: _Text, hazard: _Hazard) -> Iterator[_Hit]:
    """Standalone phrases, then each part with the nearest clear sign after or before it,
    else the nearest vague one."""
    text = doc.folded
    for match in hazard.phrases.finditer(text):
        yield _Hit(match.start(), match.end(), phrase=True)
    for match in hazard.vague_phrases.finditer(text):
        yield _Hit(match.start(), match.end(), vague=True)
    parts = list(hazard.parts.finditer(text))
    if not parts:
        return
    reach = 3 * hazard.near
    for signs, vague in ((_signs_near(doc, hazard.signs, parts, reach), False),
                         (_signs_near(doc, hazard.vague, parts, reach), True)):
        starts, matches = signs
        if not matches:
            continue
        for part in parts:
            i = bisect_left(starts, part.end())
            if i < len(matches) and matches[i].start() - part.end() <= reach:
                gap = text[part.end() : matches[i].start()]
                if _close(gap, hazard):
                    yield _Hit(part.start(), matches[i].end(), gap, vague)
                    continue
            j = bisect_left(starts, part.start()) - 1
            while j >= 0 and matches[j].end() > part.start():
                j -= 1
            if j >= 0 and part.start() - matches[j].end() <= reach and _close(text[matches[j].end() : part.start()], hazard):
                yield _Hit(matches[j].start(), part.end(), "", vague)


def _close(gap: str, hazard: _Hazard) -> bool:
    near = hazard.near
    if _SENTENCE_END.search(gap) or len(gap) > (near if _CJK.search(gap) else 3 * near):
        return False
    if hazard.net and _CLAUSE_END.search(gap):
        return False  # the net is broad: part and sign in one clause
    return not (gap and hazard.not_between.search(gap))


def _discount(doc: _Text, hit: _Hit, rules: _Compiled) -> str | None:
    """Why a safety phrase does not describe a danger happening now, if it does not."""
    before = doc.clause_before(hit.start)
    if rules.negation.search(before) or rules.gap_negation.search(hit.gap):
        return "negated"
    if rules.hypothetical.search(before):
        return "hypothetical"
    if rules.elsewhere.search(doc.folded, doc.sentence(hit.start)[0], hit.start):
        return "reported"
    stop = doc.window_end(hit.end)
    for resolved in rules.resolved.finditer(doc.folded, hit.end, stop):
        if rules.negation.search(doc.clause_before(resolved.start())):
            continue  # "没修好", "not fixed"
        return None if rules.recurred.search(doc.folded, resolved.end(), stop) else "resolved"
    if hit.vague:
        lo, hi = doc.sentence(hit.start)
        if rules.no_danger.search(doc.folded, lo, doc.sentence(hi)[1] if hi < len(doc.folded) else hi):
            return "negated"
        # A vague sign in a car standing still ("怠速的时候方向盘有点抖", "shakes at idle") is a
        # defect, not a risk, unless the same sentence has it on the road too.
        if rules.standstill.search(doc.folded, lo, hi) and not rules.context.search(doc.folded, lo, hi):
            return "stationary"
    return None


def _safety(doc: _Text, rules: _Compiled, found: _Findings) -> tuple[list[str], list[str], list[int]]:
    """The hazards described as happening (clear), those that may be (possible), and where
    they were found (each is also a defect of the car, for the category)."""
    clear: list[str] = []
    possible: list[str] = []
    defects: list[int] = []
    weights = rules.weights
    for name, hazard in rules.hazards.items():
        if hazard.net and (clear or possible):
            continue  # the net is for what the precise hazards did not catch
        first_possible: tuple[_Hit, list[tuple[str, str]]] | None = None
        for hit in _hazard_hits(doc, hazard):
            phrase = doc.snippet(hit.start, hit.end)
            why = _discount(doc, hit, rules)
            if why is not None:
                found.add(f"discounted:{why}", phrase, 0, f"not counted, {why}: {phrase}")
                continue
            certain, cues = _weigh(doc, hit, hazard, rules)
            if certain is None:
                continue
            if certain and not hazard.net:
                clear.append(name)
                defects.append(hit.start)
                found.add(f"safety:{name}", phrase, weights.safety_clear, f"safety ({name}): {phrase}")
                for kind, cue in cues:
                    found.add(kind, cue, weights.context if kind.startswith("context") else weights.fear,
                              f"{kind.replace(':', ' ')}: {cue}")
                break
            if first_possible is None:
                first_possible = (hit, cues)
        if name not in clear and first_possible is not None:
            hit, cues = first_possible
            phrase = doc.snippet(hit.start, hit.end)
            possible.append(name)
            if not hazard.net:
                defects.append(hit.start)
            found.add(f"safety:{name}", phrase, weights.safety_possible,
                      f"possible safety risk ({name}): {phrase} — please confirm")
            for kind, cue in cues:
                found.add(kind, cue, weights.context if kind.startswith("context") else weights.fear)
    return clear, possible, defects


def _weigh(doc: _Text, hit: _Hit, hazard: _Hazard, rules: _Compiled) -> tuple[bool | None, list[tuple[str, str]]]:
    """Clear (True), only possible (False) or no hazard (None), and the context and fear
    that decided it. A clear sign behind a hedge ("好像", "I think") is possible, unless the
    car was on the road or the owner was afraid; a vague sign is clear with fear; a loss of
    drive needs the road: without it a clear sign is possible and a vague one nothing."""
    lo, hi = doc.around(hit.start, hit.end)
    context = rules.context.search(doc.folded, lo, hi)
    fear = rules.fear.search(doc.folded, lo, hi)
    cues = [(kind, doc.snippet(m.start(), m.end())) for kind, m in (("context:driving", context), ("fear", fear)) if m]
    if hit.phrase:
        return True, cues
    certain = not hit.vague
    if hazard.needs_context:
        if hit.vague and not (context or fear):
            return None, cues
        certain = (certain and bool(context)) or bool(fear)
    elif hit.vague and fear:
        certain = True
    if certain and not (context or fear):
        start = doc.sentence(hit.start)[0]
        if rules.hedge.search(doc.folded, start, hit.end):
            certain = False
    return certain, cues


def _threat(doc: _Text, rules: _Compiled, found: _Findings) -> tuple[bool, bool]:
    """A threat of media, regulator or court, and whether one was only reported."""
    reported_only = False
    text = doc.folded
    for kind, pattern in rules.threats.items():
        for match in pattern.finditer(text):
            phrase = doc.snippet(match.start(), match.end())
            lo, hi = doc.sentence(match.start())
            # The whole clause: "not going to waste time with lawyers or the press" rules out both.
            if rules.ruled_out.search(doc.clause_before(match.start(), 80)) and not rules.but.search(text, match.end(), hi):
                found.add("discounted:negated", phrase, 0, f"not counted, no threat: {phrase}")
                continue
            if rules.reported.search(text, max(lo, match.start() - 60), match.start()):
                after = doc.sentence(hi)[1] if hi < len(text) else hi
                if not rules.adopted.search(text, match.end(), after):
                    reported_only = True
                    found.add("discounted:reported", phrase, 0, f"not counted, reported: {phrase}")
                    continue
            found.add(f"threat:{kind}", phrase, 1.0, f"media_or_regulator ({kind}): {phrase}")
            return True, reported_only
    return False, reported_only


def _note_quoted(quoted: str, rules: _Compiled, found: _Findings) -> None:
    """What the quoted words would have counted for, for the explanation."""
    text = fold(quoted[:8000])
    patterns = [p.phrases for p in rules.hazards.values()] + list(rules.threats.values())
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            phrase = " ".join(quoted[match.start() : match.end()].split())
            found.add("discounted:quoted", phrase, 0, f"not counted, quoted: {phrase}")


def _demand(doc: _Text, rules: _Compiled, found: _Findings) -> bool:
    for match in rules.demand.finditer(doc.folded):
        phrase = doc.snippet(match.start(), match.end())
        if rules.no_demand.search(doc.clause_before(match.start(), 40)):
            found.add("discounted:negated", phrase, 0, f"not counted, no demand: {phrase}")
            continue
        found.add("demand", phrase, 1.0, f"compensation: {phrase}")
        return True
    return False


def _category(doc: _Text, rules: _Compiled, found: _Findings, defects: list[int]) -> tuple[Category, float, bool]:
    """The category with the strongest evidence of what the customer is unhappy with. The
    subject counts more (the customer's own summary), and so does a sentence that asks for
    something (what they want resolved); safety never changes the category."""
    weights = rules.weights
    # Per sentence: how much its evidence weighs (an ask, the main grievance), and whether
    # it says a fault was fixed (then product evidence there weighs little).
    weight_of = [1.0] * len(doc.starts)
    fixed = [False] * len(doc.starts)
    for pattern, value, back in ((rules.asks, weights.ask_factor, 0), (rules.main, weights.main_factor, 1)):
        for match in pattern.finditer(doc.folded):
            i = bisect_right(doc.starts, match.start()) - 1
            for j in range(max(0, i - back), i + 1):  # "… This is the main reason": the one before too
                weight_of[j] = max(weight_of[j], value)
    for match in rules.resolved.finditer(doc.folded):
        fixed[bisect_right(doc.starts, match.start()) - 1] = True
    for match in rules.set_aside.finditer(doc.folded):
        weight_of[bisect_right(doc.starts, match.start()) - 1] = weights.set_aside_factor
    scores: dict[Category, float] = dict.fromkeys(CATEGORIES, 0.0)
    phrases: dict[Category, dict[str, float]] = {c: {} for c in CATEGORIES}
    def factor(pos: int, category: Category = "product_quality") -> float:
        if pos < doc.subject_end:
            return weights.subject_factor
        i = bisect_right(doc.starts, pos) - 1
        damp = weights.resolved_product_factor if fixed[i] and category == "product_quality" else 1.0
        if pos < doc.forward_from:
            damp *= weights.forwarder_factor
        return weight_of[i] * damp

    if defects:  # one named defect, however many hazards or mentions describe it (a loose wheel that also shakes the steering)
        scores["product_quality"] += weights.hazard_as_defect * min(factor(pos) for pos in defects)
    for category, patterns in rules.evidence.items():
        for pattern, weight in patterns:
            for match in pattern.finditer(doc.folded):
                scores[category] += weight * factor(match.start(), category)
                if weight >= weights.category_medium:
                    phrase = doc.snippet(match.start(), match.end())
                    phrases[category][phrase] = phrases[category].get(phrase, 0) + weight * factor(match.start(), category)
    order = weights.tie_order
    ranked = sorted(CATEGORIES, key=lambda c: (-scores[c], order.index(c)))
    best, second = ranked[0], ranked[1]
    if scores[best] == 0:
        found.reasons.append("category other: no evidence of product, service or price")
        return "other", weights.no_evidence_confidence, False
    for phrase, weight in list(phrases[best].items())[:8]:
        found.add(f"category:{best}", phrase, weight)
    confidence = scores[best] / (scores[best] + scores[second])
    others = "".join(f"; {c} {scores[c]:g}" for c in ranked[1:] if scores[c])
    shown = ", ".join(list(phrases[best])[:8]) or "topic words only"
    found.reasons.append(f"category {best}: {shown} (score {scores[best]:g}{others})")
    return best, confidence, scores[best] >= weights.category_strong  # weighed: at least one term naming the grievance


def own_words(text: str) -> str:
    """The sender's own words: quoted history ("> …", "On … wrote:") left out."""
    lines = []
    for line in text.split("\n"):
        if _QUOTE_HEADER.match(line.strip()):
            break
        if not line.lstrip().startswith(">"):
            lines.append(line)
    return "\n".join(lines)
