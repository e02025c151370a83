"""The case library (policy.md §11): every closed case, with personal data removed, kept for
training and searchable by category, root cause and keyword.

An entry is written by the store whenever it saves a case in the ``closed`` phase (one
entry per case, rewritten when the case changes — a survey answer, an accountability
measure, a follow-up closed again). What reaches an entry passes through ``anonymize``:
the case's own identifiers (customer, vehicle, staff) are replaced wherever they appear,
and so is anything that looks like an e-mail address, a phone, ID or bank-card number, a
VIN, a plate, a street address, a link or a person named with an honorific.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import datetime
from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from .masking import EMAIL, PHONES, PLATE, VIN
from .models import Case, Category, RootCause
from .tenant import Tenant

MAX_TEXT = 4000  # per text field of an entry: enough to learn from, small enough to list
UNKNOWN_ROOT_CAUSE = "unknown"  # a case closed without an investigation on record

# ----- anonymisation ---------------------------------------------------------------------------
# Full-width digits, letters and the characters of addresses and numbers (１３８, ＠, ＋) are
# read as their ASCII forms; full-width punctuation stays, it is how Chinese is written.
_WIDTH = {code: chr(code - 0xFEE0) for code in [*range(0xFF10, 0xFF1A), *range(0xFF21, 0xFF3B), *range(0xFF41, 0xFF5B),
                                               0xFF20, 0xFF0B, 0xFF0D, 0xFF0E]}
_CJK = r"\u4e00-\u9fff"
# The common surnames (百家姓, the ~100 most frequent): a surname before 先生/女士 is a name;
# any character before them is not (这位女士, 维修师傅).
_SURNAMES = ("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任"
             "沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤")
# Order matters: links and e-mail addresses first (they contain digits and names), then the
# long numbers (ID and bank cards before phones), then vehicles, addresses and names.
_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"https?://\S+|www\.\S+", re.IGNORECASE), "[link]"),
    (EMAIL, "[email]"),
    (re.compile(r"(?<![\dA-Za-z])\d{6}(?:19|20)\d{2}(?:0[1-9]|1[0-2])\d{2}\d{3}[\dXx](?![\dA-Za-z])"), "[ID]"),
    (re.compile(r"(?<![\dA-Za-z])(?:\d{4}[\s-]?){3}\d{4}(?:\d{1,3})?(?!\d)"), "[card]"),
    (VIN, "[VIN]"),
    *((phone, "[phone]") for phone in PHONES),
    (PLATE, "[plate]"),
    # 上海市浦东新区张杨路 123 号 4 栋 501 室, 幸福小区 3 号楼
    (re.compile(rf"(?:[{_CJK}]{{1,8}}(?:省|市|区|县|镇|乡|街道))*[{_CJK}\d]{{1,12}}(?:路|街|大道|巷|弄|道)\s*\d+\s*号"
                rf"(?:\s*\d+\s*(?:栋|幢|号楼|单元|楼|层|室))*"), "[address]"),
    (re.compile(rf"[{_CJK}]{{2,10}}(?:小区|花园|公寓|新村|大厦)\s*(?:\d+\s*(?:栋|幢|号楼|单元|号|楼|层|室)\s*)*"), "[address]"),
    (re.compile(r"\b\d{1,5}\s+(?:[A-Z][a-z]+\s+){1,4}(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Boulevard|Blvd|"
                r"Way|Court|Ct)\b\.?(?:,?\s*(?:Apt|Unit|Flat)\.?\s*\w+)?"), "[address]"),
    # Names people are called by: 王先生, 李女士, Mr Miller, Mrs. Chen, my name is …, 我叫 …
    (re.compile(rf"[{_SURNAMES}](?=先生|女士|小姐|太太|师傅)"), "[name]"),
    (re.compile(r"\b(?:Mr|Mrs|Ms|Miss|Dr)\.?\s+[A-Z][A-Za-z'-]+(?:\s+[A-Z][A-Za-z'-]+)?"), "[name]"),
    (re.compile(r"(?i:\bmy name is)\s+[A-Z][A-Za-z'-]+(?:\s+[A-Z][A-Za-z'-]+)?"), "my name is [name]"),
    (re.compile(rf"(我叫|我姓|我是)[{_SURNAMES}][{_CJK}]{{0,2}}(?=[，,。.！!\s]|$)"), r"\1[name]"),
)


def known_identifiers(case: Case, tenant: Tenant) -> list[tuple[str, str]]:
    """Everything on record that identifies a person of this case, with what replaces it: the
    customer (name and its parts, e-mail and its local part, phone), the vehicle, whoever
    registered it, and the staff of the brand and of the dealer."""
    found: list[tuple[str, str]] = []
    c = case.customer
    if c.name:
        found.append((c.name, "[name]"))
        found.extend((part, "[name]") for part in re.split(r"[\s·.]+", c.name) if len(part) >= 2)
        if re.fullmatch(rf"[{_CJK}]{{3,4}}", c.name):
            found.append((c.name[1:], "[name]"))  # the given name alone
    for email in (c.email, case.reporter):
        if email:
            found.extend([(email, "[email]"), (email.split("@", 1)[0], "[email]")])
    if c.phone:
        found.append((c.phone, "[phone]"))
    if case.vehicle:
        found.extend((v, label) for v, label in ((case.vehicle.vin, "[VIN]"), (case.vehicle.plate, "[plate]")) if v)
    people = list(tenant.brand.staff)
    if tenant.has_dealer(case.dealer):
        people += tenant.dealer(case.dealer).staff
    for person in people:
        found.extend([(person.name, "[staff]"), (person.email, "[email]"), (person.email.split("@", 1)[0], "[email]")])
    return found


def anonymize(text: str, known: Iterable[tuple[str, str]] = ()) -> str:
    """``text`` without personal data: the known identifiers wherever they appear (longest
    first, case-insensitive, in full-width forms too), then the patterns."""
    text = text.translate(_WIDTH)
    values = {value.translate(_WIDTH).strip(): label for value, label in known if value and value.strip()}
    for value in sorted(values, key=len, reverse=True):
        if len(value) < 2 or (len(value) < 3 and value.isascii()):
            continue  # "Li", "Wu": too short to replace safely in running text
        pattern = r"[\s-]*".join(re.escape(part) for part in value.split())
        if value.isascii():
            pattern = rf"(?<![\w.]){pattern}(?![\w])"
        text = re.sub(pattern, values[value], text, flags=re.IGNORECASE)
    for pattern_, replacement in _PATTERNS:
        text = pattern_.sub(replacement, text)
    return text


# ----- entries ---------------------------------------------------------------------------------
class LibraryEntry(BaseModel):
    """One closed case as the library keeps it. ``case_no`` and ``dealer`` are stored for
    upkeep and shown only to staff who may see the case itself; ``entry_id`` is what others see."""

    model_config = ConfigDict(extra="forbid")
    entry_id: str
    brand: str
    case_no: str
    dealer: str | None
    region: str | None
    category: Category
    severity: str
    root_cause: RootCause | str
    responsibility: str | None
    channel: str
    level: str
    language: str
    closed_at: datetime
    subject: str
    description: str
    findings: str = ""
    measures: str = ""
    follow_up: str = ""
    compensation: list[dict[str, str]] = Field(default_factory=list)  # [{kind, value}]
    compensation_total: Decimal = Decimal(0)
    on_time: bool
    survey_score: int | None = None
    accountability_measure: str | None = None

    @field_validator("subject", "description", "findings", "measures", "follow_up")
    @classmethod
    def _bounded(cls, value: str) -> str:
        return value[:MAX_TEXT]

    @property
    def closed_month(self) -> str:
        return self.closed_at.strftime("%Y-%m")

    def text(self) -> str:
        return "\n".join((self.subject, self.description, self.findings, self.measures, self.follow_up))


def entry_id(brand: str, case_no: str) -> str:
    """Stable per case, and not the case number: it says nothing about dealer or month."""
    return "L-" + hashlib.sha256(f"{brand}:{case_no}".encode()).hexdigest()[:12]


def library_entry(case: Case, tenant: Tenant) -> LibraryEntry:
    """The library's entry for a closed case."""
    known = known_identifiers(case, tenant)

    def clean(text: str | None) -> str:
        return anonymize(text or "", known)[:MAX_TEXT]

    inv, plan = case.investigation, case.plan
    return LibraryEntry(
        entry_id=entry_id(case.brand, case.case_no), brand=case.brand, case_no=case.case_no, dealer=case.dealer,
        region=case.region, category=case.classification.category, severity=case.classification.severity,
        root_cause=inv.root_cause if inv else UNKNOWN_ROOT_CAUSE, responsibility=inv.responsibility if inv else None,
        channel=case.channel, level=case.level, language=case.language,
        closed_at=case.closed_at or case.received_at, subject=clean(case.subject),
        description=clean(case.description), findings=clean(inv.findings if inv else ""),
        measures=clean(plan.measures if plan else ""), follow_up=clean(plan.follow_up if plan else ""),
        compensation=[{"kind": c.kind, "value": str(c.value)} for c in (plan.compensation if plan else [])],
        compensation_total=plan.total if plan else Decimal(0), on_time=case.on_time,
        survey_score=case.survey.score if case.survey else None,
        accountability_measure=case.accountability.measure if case.accountability else None)


def search(entries: Iterable[LibraryEntry], keyword: str | None) -> list[LibraryEntry]:
    """Entries whose text holds every word of ``keyword`` (case-insensitive), newest first."""
    words = [w.lower() for w in (keyword or "").split() if w]
    found = [e for e in entries if all(w in e.text().lower() for w in words)]
    return sorted(found, key=lambda e: e.closed_at, reverse=True)
