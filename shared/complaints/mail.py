"""Inbound mail turned into what intake needs (policy.md §2-§3): who wrote, to whom, about
what, in which words, and whether a person wrote it at all.

Complaint mail is messy: gb2312 labels on GBK bytes, stripped base64 padding, NUL bytes,
odd header folding, HTML-only bodies, dealers and the 400 hotline forwarding the
customer's mail. ``parse_mail`` never raises and never drops text: what cannot be decoded
exactly is decoded as well as possible, and ``warnings`` says so.

The message tree comes from the ``email`` package (default policy, compat32 when that
fails). Header values are read raw and decoded here: the package decodes RFC 2047 words
with the declared charset only, so a gb2312 label on GBK bytes loses characters (张喆),
and some malformed headers make its typed accessors raise.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.policy
import email.utils
import mimetypes
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.message import Message
from functools import lru_cache, partial
from html import unescape
from html.parser import HTMLParser
from typing import Literal

from .adverts import newsletter
from .largeparts import SlimMail

MailKind = Literal["normal", "auto_reply", "bounce", "bulk"]


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    size: int
    payload: bytes  # empty when the part was held out of memory (``largeparts``)
    held_out: Callable[[], Iterator[bytes]] | None = None

    def chunks(self) -> Iterator[bytes]:
        """The content, in chunks: read from the raw mail when it was held out."""
        if self.held_out is not None:
            yield from self.held_out()
        else:
            yield self.payload


@dataclass(frozen=True)
class Forwarded:
    """The original inside a forward (inline or message/rfc822). Its sender is the
    complainant only when intake finds the mail is a forward (``intake``): a customer who
    attaches the dealer's earlier reply is still the customer."""

    name: str | None
    address: str | None
    subject: str | None
    text: str
    note: str = ""  # the forwarder's own words above the original


@dataclass(frozen=True)
class ParsedMail:
    message_id: str | None  # ids without <>
    in_reply_to: list[str]
    references: list[str]
    subject: str  # decoded, whitespace normalised
    from_name: str | None
    from_address: str | None  # lower case: From's first valid address, else Reply-To, Sender, the envelope
    to: list[str]  # lower-case addresses
    cc: list[str]
    date: datetime  # aware UTC; the receive time when Date is missing or unreadable
    text: str  # text/plain preferred, else the HTML as text; attached originals appended
    html: str | None
    attachments: list[Attachment]  # names decoded and made safe
    headers: dict[str, str]  # lower-case name -> first value, decoded
    kind: MailKind
    forwarded: Forwarded | None  # only for normal mail: a forwarded or attached original, if any
    warnings: list[str]  # what could not be read exactly


# --- charsets -------------------------------------------------------------------------

# Labels that mail clients put on bytes of a wider charset: GB2312 mail routinely holds
# GBK characters (喆 is 0x86B4), Big5 mail holds HKSCS ones.
_WIDER_CHARSET = {"gb2312": "gb18030", "gbk": "gb18030", "big5": "big5hkscs"}
_LABEL_ALIASES = {"x-gbk": "gbk", "x-big5": "big5", "csgb2312": "gb2312", "gb_2312-80": "gb2312"}  # unknown to Python
_REPAIR = "complaints.legacy-cjk"


def _legacy_cjk(exc: UnicodeError) -> tuple[str, int]:
    """Decode error handler for UTF-8 text: stray non-UTF-8 bytes in Chinese mail are almost
    always GBK pasted from another program, so a byte pair is read as GB18030 when it is a
    Chinese character there, and replaced otherwise."""
    if not isinstance(exc, UnicodeDecodeError):
        raise exc
    pair = bytes(exc.object[exc.start : exc.start + 2])
    try:
        char = pair.decode("gb18030")
    except UnicodeDecodeError:
        return "\ufffd", exc.end
    if len(char) == 1 and not char.isascii():
        return char, exc.start + 2
    return "\ufffd", exc.end


codecs.register_error(_REPAIR, _legacy_cjk)


def _codec(label: str | None, warnings: list[str]) -> str | None:
    """The codec to use for a declared charset label, widened where clients under-declare."""
    if not label:
        return None
    label = label.strip().strip("\"'").lower()
    try:
        name = codecs.lookup(_LABEL_ALIASES.get(label, label)).name
    except LookupError:
        warnings.append(f"unknown charset {label}")
        return None
    wider = _WIDER_CHARSET.get(name)
    if wider:
        warnings.append(f"charset {label} decoded as {wider}")
        return wider
    return name


@lru_cache(maxsize=64)
def _single_byte(codec: str) -> bool:
    """Whether every byte is one character: such codecs (latin-1, cp1252, ascii) accept any
    bytes or none, so their label is no evidence against UTF-8 bytes."""
    return codec != "utf-8" and len(bytes(range(0x80, 0x100)).decode(codec, "replace")) == 0x80


def _mostly_utf8(data: bytes) -> bool:
    """UTF-8 with a few foreign bytes (repair them) rather than another charset altogether:
    legacy CJK text read as UTF-8 has fewer valid multi-byte bytes than invalid ones."""
    text = data.decode("utf-8", "replace")
    valid = len(re.sub(r"[\x00-\x7f\ufffd]", "", text).encode("utf-8"))
    return valid >= 3 * text.count("\ufffd")


_ASCII_BYTES = bytes(range(0x80))
_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK", "HEBREW", "ARABIC", "THAI")


def _valid_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _reads_as_words(text: str) -> bool:
    """Whether text read with a single-byte label reads as that label's language: its
    non-ASCII characters are letters of one script (a few marks allowed) and every word
    holding them is lower, upper or title case. Chinese double-byte text read as Latin-1
    gives symbols and case at random (ÄãºÃ, ÇëÎÊ); German gives Grüße."""
    high = [ch for ch in text if ord(ch) >= 0x80]
    letters = [ch for ch in high if ch.isalpha()]
    if not high or len(letters) < 0.8 * len(high):
        return False
    if any(unicodedata.category(ch)[0] not in "LPSZ" or ch == "\ufffd" for ch in high):
        return False  # C1 controls or undecodable bytes: not text in this charset
    scripts = {unicodedata.name(ch, "?").split(" ")[0] for ch in letters}
    if len(scripts) != 1 or not scripts <= set(_SCRIPTS):
        return False
    for word in re.findall(r"[^\W\d_]+", text):
        if any(ord(ch) >= 0x80 for ch in word) and not (word.islower() or word.isupper() or word.istitle()):
            return False
    return True


def _decode(data: bytes, label: str | None, warnings: list[str]) -> str:
    """Text from bytes whose charset label may be missing, too narrow or wrong.

    Valid UTF-8 of some length out-votes a label (GBK text is almost never valid UTF-8);
    then the label strictly, UTF-8 with stray GBK repaired, GB18030, Big5-HKSCS. A
    multi-byte label that fails on a few bytes is kept with those bytes replaced rather
    than swapped for a guess, and a single-byte label (which accepts any bytes) ranks
    after the CJK guesses unless the text is mostly ASCII, as Latin text is.
    """
    if data.isascii():
        return _seven_bit(data, label)
    declared = _codec(label, warnings)
    high = len(data.translate(None, _ASCII_BYTES))
    single = declared is not None and _single_byte(declared)
    if declared and single and not _valid_utf8(data) and _reads_as_words(data.decode(declared, "replace")):
        return data.decode(declared, "replace")  # aaäöüßad in latin-1 is German, not 漩 in GB18030
    order: list[str] = []
    if declared and not single and high < 12:
        order.append(declared)  # too few bytes for UTF-8 validity to mean much
    order.append("utf-8")
    if declared and (not single or high < 0.3 * len(data)):
        order.append(declared)
    order += ["gb18030", "big5hkscs"]
    if declared:
        order.append(declared)
    for codec in dict.fromkeys(order):
        if codec == "gb18030" and not declared:
            japanese = _as_japanese(data)
            if japanese is not None:
                return japanese
        try:
            text = data.decode(codec)
        except UnicodeDecodeError:
            if codec == "utf-8" and _mostly_utf8(data):
                return _decode_lossy(data, codec, warnings)
            if codec == declared and not single:
                lossy = data.decode(codec, "replace")
                if lossy.count("\ufffd") <= max(2, len(lossy) // 100):
                    warnings.append("invalid bytes replaced")
                    return lossy
            continue
        if label and codec != declared:
            warnings.append(f"charset {label.strip().lower()} declared, decoded as {codec}")
        return text
    best = min(dict.fromkeys(order), key=lambda c: data.decode(c, "replace").count("\ufffd"))
    return _decode_lossy(data, best, warnings)


# Charsets whose text is all ASCII bytes, shifting by escape sequences (ISO-2022-JP, the
# usual Japanese mail charset) or base64 runs (UTF-7): ASCII bytes are not ASCII text under them.
_SEVEN_BIT = ("iso2022", "utf-7", "hz")


def _seven_bit(data: bytes, label: str | None) -> str:
    declared = _codec(label, []) if label else None  # an ASCII body under an unknown label is still ASCII
    if declared and declared.startswith(_SEVEN_BIT):
        try:
            return data.decode(declared)
        except UnicodeDecodeError:
            if declared.startswith("iso2022_jp"):
                return _jis_as_cp932(data)
    elif _JIS_SHIFT.search(data):
        # Unlabelled or labelled ASCII yet shifting into JIS X 0208 (Outlook's "text/plain;",
        # Zammad's mail116): no ASCII text has ESC $ B, so it is ISO-2022-JP.
        try:
            return data.decode("iso2022_jp")
        except UnicodeDecodeError:
            return _jis_as_cp932(data)
    return data.decode("ascii")


_JIS_SHIFT = re.compile(rb"\x1b\$[@B]")


_JIS_RUN = re.compile(rb"\x1b\$[@B]([^\x1b]*)")
_LINE_AND_REST = re.compile(rb"([^\r\n]*)(.*)", re.DOTALL)


def _jis_as_cp932(data: bytes) -> str:
    """ISO-2022-JP as Windows writes it (CP50220): JIS X 0208 plus NEC's row 13 (①, ㈱), which
    Python's codec refuses. Each two-byte run is moved to Shift_JIS and read as cp932, which has
    those rows; a run left open at a line end (no ESC ( B) ends there."""
    def sjis(run: re.Match[bytes]) -> bytes:
        two_byte, rest = _LINE_AND_REST.fullmatch(run.group(1)).groups()  # type: ignore[union-attr]  # always matches
        out = bytearray()
        for j1, j2 in zip(two_byte[::2], two_byte[1::2], strict=False):
            s1 = ((j1 + 1) >> 1) + (0x70 if j1 < 0x5F else 0xB0)
            s2 = j2 + (0x1F if j1 % 2 else 0x7E)
            out += bytes((s1, s2 + 1 if j1 % 2 and s2 >= 0x7F else s2))
        return bytes(out) + rest  # RFC 1468: a line ends in ASCII

    shifted = _JIS_RUN.sub(sjis, data).replace(b"\x1b(B", b"").replace(b"\x1b(J", b"")
    return shifted.decode("cp932", "replace")


_KANA = re.compile(r"[\u3041-\u3096\u30a1-\u30fa\u30fc]")
_HALF_WIDTH_KANA = re.compile(r"[\uff61-\uff9f]")


def _as_japanese(data: bytes) -> str | None:
    """Undeclared 8-bit Shift_JIS (a Japanese client's raw subject): GBK decodes its bytes
    too, as rare hanzi (ツール as 僣乕儖). Read as Shift_JIS when that gives kana, which Japanese
    text has and a GBK reading does not; GBK Chinese read as Shift_JIS gives half-width
    kana (its lead bytes 0xA1-0xDF), so any of those means it is not Japanese."""
    try:
        text = data.decode("cp932")
    except UnicodeDecodeError:
        return None
    return text if _KANA.search(text) and not _HALF_WIDTH_KANA.search(text) else None


def _decode_lossy(data: bytes, codec: str, warnings: list[str]) -> str:
    if codec == "utf-8":
        text = data.decode(codec, _REPAIR)
        warnings.append("invalid utf-8 bytes read as gb18030 where possible")
    else:
        text = data.decode(codec, "replace")
    if "\ufffd" in text:
        warnings.append("invalid bytes replaced")
    return text


# --- headers --------------------------------------------------------------------------

# Encoded words; raw spaces inside the text are not RFC 2047 but common (=?us-ascii?Q?ABC / 123?=).
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*?)\?=")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_ADDRESS = re.compile(r"[\w.+%'-]+@[\w-]+(?:\.[\w-]+)+")
_MESSAGE_ID = re.compile(r"<([^<>\s]+)>")


def _raw_text(value: object, warnings: list[str]) -> str:
    """A raw header value as str: 8-bit header bytes arrive as surrogate escapes."""
    text = str(value)
    if any("\udc80" <= ch <= "\udcff" for ch in text):
        text = _decode(text.encode("utf-8", "surrogateescape"), None, warnings)
    return text


def _unfold(value: str) -> str:
    return re.sub(r"\r?\n(?=[ \t])", "", value).replace("\r", " ").replace("\n", " ")


def _normalise(value: str) -> str:
    return " ".join(_CONTROL.sub("", value).split())


def _decode_words(value: str, warnings: list[str]) -> str:
    """RFC 2047 encoded words decoded. Adjacent words in one charset are joined as bytes
    before decoding: clients split multi-byte characters across words."""
    pieces: list[str] = []
    run = bytearray()
    run_charset: str | None = None

    def flush() -> None:
        nonlocal run_charset
        if run_charset is not None:
            pieces.append(_decode(bytes(run), run_charset, warnings))
            run.clear()
            run_charset = None

    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        gap = value[pos : match.start()]
        charset = match.group(1).split("*")[0].lower()  # RFC 2231 language suffix
        if gap and not gap.isspace():
            flush()
            pieces.append(gap)
        elif gap and run_charset is None:
            pieces.append(gap)  # whitespace after plain text stays; between words it goes
        if run_charset is not None and charset != run_charset:
            flush()
        word = _word_bytes(match.group(2).lower(), match.group(3))
        if word is None:
            flush()
            pieces.append(match.group(0))
        else:
            run.extend(word)
            run_charset = charset
        pos = match.end()
    flush()
    pieces.append(value[pos:])
    return "".join(pieces)


def _word_bytes(encoding: str, text: str) -> bytes | None:
    try:
        if encoding == "b":
            text = "".join(text.split())
            return base64.b64decode(text + "=" * (-len(text) % 4))
        return binascii.a2b_qp(text.encode("ascii"), header=True)
    except (binascii.Error, ValueError):
        return None


def _header_text(value: object, warnings: list[str]) -> str:
    return _normalise(_decode_words(_unfold(_raw_text(value, warnings)), warnings))


def _raw_header(msg: Message, name: str) -> str | None:
    """The first raw value of a header; reading raw values never raises."""
    return next(iter(_raw_headers(msg, name)), None)


def _raw_headers(msg: Message, name: str) -> list[str]:
    return [str(value) for key, value in msg.raw_items() if key.lower() == name]


# A mailbox a reply can reach: a local part (dot-atom or RFC 5322 quoted string) and a domain
# with at least one dot; a single-label domain (user@localhost, redacted@redacted) is refused.
_VALID_ADDRESS = re.compile(r'(?:[^@\s<>\[\]"]+|"[^"\\\r\n]+")@[^@\s<>\[\].]+(?:\.[^@\s<>\[\].]+)+')
# An angle-bracketed addr-spec whose unquoted local part holds spaces: the brackets make the
# intent unambiguous, so it is read as the quoted local part it means.
_SPACED_LOCAL = re.compile(r'<\s*([^<>@"]*\s[^<>@"]*)@([^<>@\s]+)\s*>')
_SENDER_HEADERS = ("from", "reply-to", "sender")


def _sender_of(msg: Message, warnings: list[str]) -> tuple[tuple[str | None, str | None], str | None]:
    """Who wrote a message and which header said so: the first valid address of From (a
    mail may carry several From headers, the first broken), else Reply-To, else Sender."""
    for header in _SENDER_HEADERS:
        for value in _raw_headers(msg, header):
            found = [pair for pair in _addresses(value, warnings) if _VALID_ADDRESS.fullmatch(pair[1])]
            if found:
                return found[0], header
    return (None, None), None


def _addresses(value: str | None, warnings: list[str]) -> list[tuple[str | None, str]]:
    """(display name, lower-case address) pairs. The structure is parsed on the raw value,
    so a decoded name holding a comma cannot split an address; a trailing dot (the DNS root,
    user@example.com.) is dropped: it names the same mailbox."""
    if not value:
        return []
    raw = _unfold(_raw_text(value, warnings))
    try:
        pairs = email.utils.getaddresses([raw])
    except Exception:  # noqa: BLE001 - a malformed address header must not lose the mail
        pairs = []
    spaced = {f"{' '.join(local.split())}@{domain}".lower(): f'"{" ".join(local.split())}"@{domain}'
              for local, domain in _SPACED_LOCAL.findall(raw)}
    found = [
        (_normalise(_decode_words(name, warnings)).strip("\"' ") or None,
         spaced.get(" ".join(addr.split()).lower(), addr.strip()).rstrip(".").lower())
        for name, addr in pairs if "@" in addr
    ]
    if not found:
        found = [(None, addr.lower()) for addr in _ADDRESS.findall(raw)]
    return found


def _message_ids(value: str | None) -> list[str]:
    if not value:
        return []
    unfolded = _unfold(value)
    return _MESSAGE_ID.findall(unfolded) or unfolded.split()


def _date(value: str | None, received_at: datetime, warnings: list[str]) -> datetime:
    if not value:
        warnings.append("missing Date")
        return received_at
    try:
        parsed = email.utils.parsedate_to_datetime(_unfold(value).strip())
    except (TypeError, ValueError, IndexError, OverflowError):
        warnings.append("unparseable Date")
        return received_at
    return _utc(parsed)


def _utc(moment: datetime) -> datetime:
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _mime(value: str, warnings: list[str]) -> Message:
    """A compat32 message holding one MIME header, for parameter parsing that never raises
    (RFC 2231 values come back as (charset, language, text) tuples)."""
    shim = Message()
    shim["Content-Type"] = _unfold(_raw_text(value, warnings))
    return shim


def _param(value: str | None, name: str, warnings: list[str]) -> str | None:
    if value is None:
        return None
    try:
        param = _mime(value, warnings).get_param(name)
    except Exception:  # noqa: BLE001 - parameter parsing of a malformed header
        return None
    if isinstance(param, tuple):  # RFC 2231: charset'language'percent-encoded
        charset, _, text = param
        return _decode(str(text).encode("latin-1", "replace"), charset or None, warnings)
    if param is None:
        return None
    return _header_text(email.utils.unquote(str(param)), warnings)


def _content_type(part: Message) -> str:
    value = _raw_header(part, "content-type")
    if value is None:
        return "text/plain"
    try:
        return _mime(value, []).get_content_type()
    except Exception:  # noqa: BLE001 - a Content-Type no parser accepts is read as plain text
        return "text/plain"


# --- bodies ---------------------------------------------------------------------------

class _HtmlText(HTMLParser):
    """Readable text of an HTML body: blocks become lines, scripts and styles go."""

    _HIDDEN = frozenset({"script", "style", "head", "title", "noscript", "template"})
    _BLOCKS = frozenset({
        "p", "div", "tr", "table", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote",
        "hr", "section", "article", "header", "footer", "pre", "dl", "dt", "dd", "address", "center",
    })

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0
        self._pre = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "body":
            self._hidden = 0  # an unclosed <head> must not hide the message
        elif tag in self._HIDDEN:
            self._hidden += 1
        elif tag == "br":
            self.parts.append("\n")
        elif tag == "li":
            self.parts.append("\n- ")
        elif tag in ("td", "th"):
            self.parts.append(" ")
        elif tag in self._BLOCKS:
            self.parts.append("\n")
            self._pre += tag == "pre"

    def handle_endtag(self, tag: str) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden - 1)
        elif tag in self._BLOCKS:
            self.parts.append("\n")
            self._pre = max(0, self._pre - (tag == "pre"))

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data if self._pre else re.sub(r"\s+", " ", data))


def _html_text(markup: str) -> str:
    """Plain text of an HTML body, for classification and for people reading the case."""
    parser = _HtmlText()
    try:
        parser.feed(markup)
        parser.close()
        text = "".join(parser.parts)
    except Exception:  # noqa: BLE001 - html.parser is lenient, but a body must never be lost to it
        text = unescape(re.sub(r"<[^>]*>", " ", markup))
    if not text.strip() and markup.strip():
        text = unescape(re.sub(r"<[^>]*>", " ", markup))
    return _clean_text("\n".join(line.strip() for line in text.split("\n")))


def _clean_text(text: str) -> str:
    """Line ends unified, NULs and other control characters removed, blank runs collapsed."""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n"))
    lines = [line.rstrip() for line in text.split("\n")]
    out: list[str] = []
    for line in lines:
        if line.strip() or (out and out[-1]):
            out.append(line if line.strip() else "")
    return "\n".join(out).strip()


@dataclass
class _Content:
    plain: list[str] = field(default_factory=list)
    html: list[str] = field(default_factory=list)
    # HTML parts that stand beside the plain text in a multipart/mixed (no alternative between
    # them): they may say something the plain part does not, as a mature parser joins them.
    html_beside: list[str] = field(default_factory=list)
    attachments: list[Attachment] = field(default_factory=list)
    originals: list[Message] = field(default_factory=list)  # message/rfc822 parts
    delivery_report: bool = False

    def merge(self, other: _Content) -> None:
        self.attachments += other.attachments
        self.originals += other.originals
        self.delivery_report |= other.delivery_report


_MAX_DEPTH = 20


def _walk(part: Message, content: _Content, warnings: list[str], *, top: bool, in_report: bool, depth: int) -> None:
    """Sort a MIME part into body text, attachments and attached originals."""
    if depth > _MAX_DEPTH:
        warnings.append("MIME nesting too deep; inner parts skipped")
        return
    ctype = _content_type(part)
    payload = part.get_payload()
    if ctype.startswith("multipart/"):
        if not isinstance(payload, list):
            warnings.append(f"{ctype} without parts read as text")
            ctype = "text/plain"
        else:
            children = [child for child in payload if isinstance(child, Message)]
            report = in_report or ctype == "multipart/report"
            if ctype == "multipart/alternative":
                _walk_alternatives(children, content, warnings, report, depth)
            else:
                for child in children:
                    before = len(content.html)
                    _walk(child, content, warnings, top=False, in_report=report, depth=depth + 1)
                    if ctype == "multipart/mixed" and _content_type(child) == "text/html" and len(content.html) > before:
                        content.html_beside.append(content.html[-1])
            return
    disposition = _raw_header(part, "content-disposition")
    filename = _param(disposition, "filename", warnings) or _param(_raw_header(part, "content-type"), "name", warnings)
    is_attachment = not top and (filename is not None or _disposition(disposition) == "attachment")
    if ctype in ("text/plain", "text/html") and not is_attachment:
        data = part.get_payload(decode=True)
        charset = _param(_raw_header(part, "content-type"), "charset", warnings)
        text = _decode(data if isinstance(data, bytes) else b"", charset, warnings)
        (content.plain if ctype == "text/plain" else content.html).append(text)
        return
    if ctype.startswith("message/") and isinstance(payload, list):
        inner = [message for message in payload if isinstance(message, Message)]
        if ctype in ("message/rfc822", "message/global") and inner and not in_report:
            content.originals.append(inner[0])  # in a report it is our own mail returned
        content.delivery_report |= ctype == "message/delivery-status"
        data = b"".join(_message_bytes(message) for message in inner)
    else:
        decoded = part.get_payload(decode=True)
        data = decoded if isinstance(decoded, bytes) else b""
    description = _raw_header(part, "content-description")
    said = _said_by(part, ctype, warnings)  # an attached message's subject says more than "Undelivered Message"
    name = _safe_filename(filename or "", ctype, len(content.attachments) + 1,
                          said or (_header_text(description, warnings) if description else ""))
    content.attachments.append(Attachment(filename=name, content_type=ctype, size=len(data), payload=data))


def _said_by(part: Message, ctype: str, warnings: list[str]) -> str:
    """What names a nameless part: an attached message its subject (a returned mail's
    "Ihre Anfrage [Ticket#638810].eml"), a report part its type ("delivery-status.txt"),
    both before its description; else nothing (the description, or a number)."""
    payload = part.get_payload()
    if ctype in ("message/rfc822", "message/global") and isinstance(payload, list) and payload:
        subject = _raw_header(payload[0], "subject") if isinstance(payload[0], Message) else None
        return _header_text(subject, warnings) if subject else ""
    if ctype in ("message/delivery-status", "message/disposition-notification") and not _raw_header(part, "content-description"):
        return ctype.split("/", 1)[1]
    return ""


def _walk_alternatives(children: list[Message], content: _Content, warnings: list[str], in_report: bool, depth: int) -> None:
    """Alternatives say the same thing: keep the first plain version and the first HTML one."""
    versions = []
    for child in children:
        version = _Content()
        _walk(child, version, warnings, top=False, in_report=in_report, depth=depth + 1)
        versions.append(version)
        content.merge(version)
    content.plain += next((v.plain for v in versions if any(t.strip() for t in v.plain)), [])
    content.html += next((v.html for v in versions if any(t.strip() for t in v.html)), [])


def _disposition(value: str | None) -> str | None:
    if not value:
        return None
    return _unfold(value).split(";")[0].strip().lower() or None


def _message_bytes(msg: Message) -> bytes:
    try:
        return msg.as_bytes(policy=email.policy.compat32)
    except Exception:  # noqa: BLE001 - re-serialising a broken original; the raw mail is kept elsewhere
        return b""


# Types without a registered extension whose content is lines of text (RFC 3464, RFC 8098).
_TEXT_TYPES = frozenset({"message/delivery-status", "message/disposition-notification", "text/rfc822-headers"})


def _safe_filename(name: str, content_type: str, index: int, description: str = "") -> str:
    """A name safe to store and show: no directories, control or bidi characters, no
    reserved punctuation, bounded length. A nameless part is named after its description
    ("Delivery report.txt" says more to staff than "attachment-1.bin"), else numbered;
    the extension comes from its type."""
    if not name.strip() and description.strip():
        extension = _extension(content_type)
        stem = _safe_filename(description.replace("/", "-").replace("\\", "-"), content_type, index)[:100]
        return stem if stem.lower().endswith(extension) else stem + extension
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] != "C")
    name = " ".join(re.sub(r'[<>:"|?*]', "_", name).split()).lstrip(". ")
    if len(name) > 150:
        stem, dot, ext = name.rpartition(".")
        name = stem[: 150 - len(ext) - 1] + dot + ext if dot and len(ext) <= 10 else name[:150]
    if not name:
        name = f"attachment-{index}{_extension(content_type)}"
    return name


def _extension(content_type: str) -> str:
    if content_type.startswith("text/") or content_type in _TEXT_TYPES:
        return mimetypes.guess_extension(content_type) or ".txt"
    return mimetypes.guess_extension(content_type) or ".bin"


# --- kind -----------------------------------------------------------------------------

_AUTO_REPLY_SUBJECT = re.compile(
    r"^[\s\[【(（]*(?:自动回复|自動回覆|自動回復|自动答复|自動答覆|auto(?:matic)?[\s-]?(?:reply|response)|autoreply"
    r"|out of (?:the )?office|(?:休假|外出|不在办公室|不在辦公室)(?:中|通知)?\s*[:：】\]])",
    re.IGNORECASE,
)
_BOUNCE_SUBJECT = re.compile(
    r"undeliver|delivery status notification|delivery (?:has )?failed|mail delivery (?:failed|subsystem)"
    r"|returned mail|failure notice|退信|投递失败|未能送达|无法投递|無法傳遞",
    re.IGNORECASE,
)


# What a complaint says and an absence notice does not: a subject that looks like an
# auto-reply drops the mail only when the body reads as one too.
_GRIEVANCE = re.compile(
    r"投诉|投訴|故障|问题|問題|刹车|剎車|异响|異響|维修|維修|修理|退款|退车|退車|赔偿|賠償|不满|不滿|质量|質量|漏水|异味|"
    r"complain|problem|fault|broken|defect|repair|refund|noise|brake|warranty|dealer|"
    r"beschwerde|reklamation|defekt|mangel|werkstatt|réclamation|plainte|panne|garantie",
    re.IGNORECASE,
)
_AUTO_REPLY_BODY = 800  # characters: an absence notice is short


def _reads_as_auto_reply(text: str) -> bool:
    return len(text) <= _AUTO_REPLY_BODY and not _GRIEVANCE.search(text)


# Headers by which a filtering gateway marks a mass mailing (antispameurope's "infomail").
_GATEWAY_BULK = ("x-antispameurope-detected-infomail",)


def _kind(
    headers: dict[str, str], subject: str, sender: str | None, ctype: str, report_type: str | None, delivery_report: bool,
    text: str = "",
) -> MailKind:
    """Mail no person wrote to us must never open a case or be answered (mail loops)."""
    daemon = (sender or "").split("@")[0] in ("mailer-daemon", "postmaster") or headers.get("return-path") == "<>"
    if ctype == "multipart/report" and report_type == "delivery-status":
        return "bounce"
    if daemon and (delivery_report or _BOUNCE_SUBJECT.search(subject)):
        return "bounce"
    if ctype == "multipart/report" and report_type == "disposition-notification":
        return "auto_reply"  # a read receipt
    auto_submitted = headers.get("auto-submitted", "").split(";")[0].strip().lower()
    precedence = headers.get("precedence", "").strip().lower()
    if auto_submitted not in ("", "no") or precedence == "auto_reply":
        return "auto_reply"
    if any(headers.get(name, "no").lower() != "no" for name in ("x-autoreply", "x-autorespond")):
        return "auto_reply"
    if _AUTO_REPLY_SUBJECT.search(subject) and _reads_as_auto_reply(text):
        return "auto_reply"
    if "list-id" in headers or "list-unsubscribe" in headers or precedence in ("bulk", "list", "junk"):
        return "bulk"
    if any(headers.get(name, "").strip().lower() == "yes" for name in _GATEWAY_BULK):
        return "bulk"  # a filtering gateway on the way classed it as a mass mailing
    if not _forward_subject(subject) and newsletter(subject, text):
        return "bulk"  # a shop's mailing without list headers: its footer gives it away
    return "normal"


# --- forwards -------------------------------------------------------------------------

# A line that opens a forwarded original for certain...
_FORWARD_MARKER = re.compile(
    r"[-_=*\s>]*(?:begin forwarded message|forwarded message|转发的邮件|转发邮件信息|转发邮件|已转发邮件|轉寄郵件|轉發的郵件|轉寄的郵件)\s*[:：]?[-_=*\s]*",
    re.IGNORECASE,
)
# ...and one that opens either a forwarded original or a quoted reply.
_ORIGINAL_MARKER = re.compile(r"[-_=*\s>]*(?:original message|原始邮件|原始郵件|原邮件|原郵件)[-_=*\s]*|_{10,}", re.IGNORECASE)
_FIELD_LINE = re.compile(r"^[\s>]*\**\s*([^:：]{1,12}?)\s*\**\s*[:：]\s*(.*)$")
_FORWARD_FIELDS = {
    "from": "from", "发件人": "from", "發件人": "from", "寄件者": "from", "寄件人": "from",
    "subject": "subject", "主题": "subject", "主題": "subject", "主旨": "subject",
    "date": "date", "sent": "date", "发送时间": "date", "發送時間": "date", "日期": "date", "时间": "date", "時間": "date", "寄件日期": "date",
    "to": "to", "收件人": "to", "收件者": "to", "cc": "cc", "抄送": "cc", "副本": "cc",
}
_PREFIX = re.compile(r"^\s*(?:(?:\[[^\]]*\]|【[^】]*】)\s*)*(re|aw|sv|回复|回覆|答复|答覆|fwd?|wg|tr|转发|轉發|轉寄)\s*[:：]\s*", re.IGNORECASE)
_FORWARD_PREFIXES = frozenset({"fw", "fwd", "wg", "tr", "转发", "轉發", "轉寄"})


def _forward_subject(subject: str) -> bool:
    """Whether the leading Re:/Fwd: chain of a subject contains a forward."""
    while match := _PREFIX.match(subject):
        if match.group(1).lower() in _FORWARD_PREFIXES:
            return True
        subject = subject[match.end() :]
    return False


def _header_block(lines: list[str], start: int) -> tuple[dict[str, str], int] | None:
    """The "From: / Sent: / Subject:" lines a client writes above a quoted original."""
    while start < len(lines) and not lines[start].strip():
        start += 1
    fields: dict[str, str] = {}
    end = start
    while end < len(lines):
        match = _FIELD_LINE.match(lines[end])
        key = _FORWARD_FIELDS.get(match.group(1).strip().lower()) if match else None
        if match is None or key is None:
            break
        fields.setdefault(key, match.group(2).strip())
        end += 1
    return (fields, end) if "from" in fields and len(fields) >= 2 else None


def _sender(value: str) -> tuple[str | None, str | None]:
    value = re.sub(r"\[mailto:([^\]]+)\]", r"<\1>", value).replace("*", "").strip().rstrip(";").strip()
    name, address = email.utils.parseaddr(value)
    if "@" not in address:
        found = _ADDRESS.search(value)
        address = found.group(0) if found else ""
        name = value.split("<")[0] if found else value
    return _normalise(name).strip("\"' ") or None, address.lower() or None


def _inline_forward(text: str, subject: str, own: frozenset[str], depth: int = 0) -> Forwarded | None:
    """The outermost forwarded original written inline, followed into forwards of forwards.
    "原始邮件"/"Original Message" blocks and bare From/Sent headers also introduce quoted
    replies, so they count only under a forward subject; an original from one of the
    recipients is our own mail quoted back, never a complainant."""
    lines = text.split("\n")
    forward_subject = _forward_subject(subject)
    for index, line in enumerate(lines):
        explicit = _FORWARD_MARKER.fullmatch(line) is not None
        if explicit or _ORIGINAL_MARKER.fullmatch(line):
            block = _header_block(lines, index + 1)
        elif (match := _FIELD_LINE.match(line)) and _FORWARD_FIELDS.get(match.group(1).strip().lower()) == "from":
            block = _header_block(lines, index)
            block = block if block and "date" in block[0] else None
        else:
            continue
        if block is None or not (explicit or forward_subject):
            continue
        fields, end = block
        name, address = _sender(fields["from"])
        if address in own:
            continue
        body = _unquote("\n".join(lines[end:]))
        found = Forwarded(name=name, address=address, subject=fields.get("subject") or None, text=body,
                          note=_clean_text("\n".join(lines[:index])))
        deeper = _inline_forward(body, found.subject or "", own, depth + 1) if depth < 5 else None
        return deeper or found
    return None


def _unquote(text: str) -> str:
    lines = text.strip().split("\n")
    if all(line.startswith(">") for line in lines if line.strip()):
        lines = [line[1:].removeprefix(" ") for line in lines]
    return _clean_text("\n".join(lines))


# --- the message ----------------------------------------------------------------------

@dataclass
class _Read:
    headers: dict[str, str]
    subject: str
    sender: tuple[str | None, str | None]
    sender_header: str | None  # from, reply-to or sender: where the sender was found
    text: str
    own_text: str  # the text without attached originals
    html: str | None
    content: _Content
    originals: list[_Read]


def _grams(text: str) -> set[str]:
    flat = "".join(text.split()).lower()
    return {flat[i : i + 3] for i in range(max(0, len(flat) - 2))}


def _saying_more(plain: list[str], beside: list[str]) -> list[str]:
    """The texts of HTML parts beside the plain text that are not the same text again (a
    mailer that sends both versions without an alternative): fewer than 80 % of their
    three-character runs already in the plain text."""
    seen = _grams("\n".join(plain))
    more = []
    for text in beside:
        grams = _grams(text)
        if grams and len(grams & seen) < 0.8 * len(grams):
            more.append(text)
            seen |= grams
    return more


def _read(msg: Message, warnings: list[str], depth: int = 0) -> _Read:
    """One message: its headers decoded, its best text, and attached originals read too;
    their text is appended to the body, as an inline forward would show it."""
    headers: dict[str, str] = {}
    for key, value in msg.raw_items():
        headers.setdefault(key.lower(), _header_text(value, warnings))
    sender, sender_header = _sender_of(msg, warnings)
    content = _Content()
    _walk(msg, content, warnings, top=True, in_report=False, depth=depth)
    plain_parts = [t for t in content.plain if t.strip()]
    if plain_parts:
        plain_parts += _saying_more(plain_parts, [_html_text(markup) for markup in content.html_beside])
    plain = _clean_text("\n\n".join(plain_parts))
    markup = "\n".join(content.html) or None
    text = plain or (_html_text(markup) if markup else "")
    own_text = _clean_text(text)
    originals = [_read(original, warnings, depth + 1) for original in content.originals]
    for inner in originals:
        name, address = inner.sender
        written_by = f"{name} <{address}>" if name and address else (address or name or "")
        heading = f"---------- Forwarded message ----------\nFrom: {written_by}\nSubject: {inner.subject}"
        text = "\n\n".join(part for part in (text, heading, inner.text) if part)
    return _Read(
        headers=headers, subject=headers.get("subject", ""), sender=sender, sender_header=sender_header,
        text=_clean_text(text), own_text=own_text, html=markup, content=content, originals=originals,
    )


def _forwarded(read: _Read, own: frozenset[str]) -> Forwarded | None:
    """The forwarded original whose sender is the complainant: an attached message/rfc822
    (followed into an inline forward inside it), else an inline forward in the body."""
    for inner in read.originals:
        name, address = inner.sender
        if address in own:
            continue
        found = Forwarded(name=name, address=address, subject=inner.subject or None, text=inner.text,
                          note=read.own_text)
        inline = _inline_forward(inner.text, inner.subject, own)
        return replace(inline, note=read.own_text) if inline else found
    return _inline_forward(read.text, read.subject, own)


def parse_mail(raw: bytes | SlimMail, *, received_at: datetime, envelope_from: str | None = None) -> ParsedMail:
    """Everything intake needs from a raw message; never raises, never drops text. A
    ``SlimMail`` is parsed without its large binary parts, which its attachments read
    back from the raw mail when stored."""
    received_at = _utc(received_at)
    warnings: list[str] = []
    slim = raw if isinstance(raw, SlimMail) else SlimMail(raw)
    raw = slim.raw
    try:
        return _parse(slim, received_at, envelope_from, warnings)
    except Exception as exc:  # noqa: BLE001 - a complaint must never be lost to a parser bug: keep its words
        warnings.append(f"message not parseable ({type(exc).__name__}); raw text kept")
        return ParsedMail(
            message_id=None, in_reply_to=[], references=[], subject="", from_name=None,
            from_address=_envelope(envelope_from), to=[], cc=[], date=received_at,
            text=_clean_text(_decode(raw, None, warnings)), html=None, attachments=[], headers={},
            kind="normal", forwarded=None, warnings=list(dict.fromkeys(warnings)),
        )


def _parse(slim: SlimMail, received_at: datetime, envelope_from: str | None, warnings: list[str]) -> ParsedMail:
    raw = slim.raw
    msg = _message(raw, warnings)
    if not _names_sender_or_subject(msg):
        msg = _reread(raw, msg, warnings)
    read = _read(msg, warnings)
    name, address = read.sender
    if address is None:
        address = _envelope(envelope_from)
        warnings.append("no valid sender in From, Reply-To or Sender; envelope sender used" if address
                        else "no sender address")
    elif read.sender_header != "from":
        warnings.append(f"no valid address in From; the sender is taken from {(read.sender_header or '').title()}")
    to = [addr for _, addr in _addresses(_raw_header(msg, "to"), warnings)]
    cc = [addr for _, addr in _addresses(_raw_header(msg, "cc"), warnings)]
    ctype = _content_type(msg)
    report_type = _param(_raw_header(msg, "content-type"), "report-type", warnings)
    report = (report_type or "").lower() or None
    kind = _kind(read.headers, read.subject, address, ctype, report, read.content.delivery_report, read.own_text)
    message_id = _message_ids(_raw_header(msg, "message-id"))
    return ParsedMail(
        message_id=message_id[0] if message_id else None,
        in_reply_to=_message_ids(_raw_header(msg, "in-reply-to")),
        references=_message_ids(_raw_header(msg, "references")),
        subject=read.subject,
        from_name=name,
        from_address=address,
        to=to,
        cc=cc,
        date=_date(_raw_header(msg, "date"), received_at, warnings),
        text=read.text,
        html=read.html,
        attachments=_attachments(read, slim, warnings),
        headers=read.headers,
        kind=kind,
        forwarded=_forwarded(read, frozenset(to + cc)) if kind == "normal" else None,
        warnings=list(dict.fromkeys(warnings)),
    )


def _message(raw: bytes, warnings: list[str]) -> Message:
    try:
        return email.message_from_bytes(raw, policy=email.policy.default)
    except Exception:  # noqa: BLE001 - the default policy parses Content-Type while building the tree
        warnings.append("parsed with the compat32 policy")
        return email.message_from_bytes(raw, policy=email.policy.compat32)


_HEADER_LINE = re.compile(rb"[!-9;-~]{1,76}:[^\r\n]*\r?")
_KNOWN_HEADERS = frozenset({b"from", b"to", b"subject", b"date", b"received", b"return-path", b"message-id", b"reply-to"})
_STRAY_LINES = 10  # how far down a header block is looked for


def _header_start(raw: bytes) -> int | None:
    """Where a header block starts after stray lines (a mailbox separator, a note pasted
    above the headers): the first line followed by header lines, two at least, one of
    them a header every mail has."""
    lines = raw.split(b"\n", 40)[:40]
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line) + 1)
    for first in range(1, min(_STRAY_LINES, len(lines)) + 1):
        names: list[bytes] = []
        for line in lines[first:]:
            if line[:1] in (b" ", b"\t") and names:
                continue  # a folded line of the header above
            if not _HEADER_LINE.fullmatch(line):
                break
            names.append(line.split(b":", 1)[0].strip().lower())
        if len(names) >= 2 and _KNOWN_HEADERS & set(names):
            return offsets[first]
    return None


def _names_sender_or_subject(msg: Message) -> bool:
    return any(name.lower() in _SENDER_HEADERS or name.lower() == "subject" for name in msg)


def _reread(raw: bytes, msg: Message, warnings: list[str]) -> Message:
    """A mail whose headers name no sender and no subject, read again: first with folding
    indents put back (the block starts at the top), else from a header block found below
    stray lines, its indents put back too."""
    refolded = _refolded(raw) if _HEADER_LINE.fullmatch(raw.split(b"\n", 1)[0]) else None
    tried: list[str] = []
    if refolded is not None and _names_sender_or_subject(again := _message(refolded, tried)):
        warnings += [*tried, _REFOLDED]
        return again
    start = _header_start(raw)
    if not start:
        return msg
    warnings.append("stray lines before the headers skipped")
    refolded = _refolded(raw[start:])
    if refolded is not None:
        warnings.append(_REFOLDED)
    return _message(refolded or raw[start:], warnings)


_REFOLDED = "header lines that lost their folding indent read as continued headers"
_MAX_HEADER_LINES = 500


def _refolded(raw: bytes) -> bytes | None:
    """The header block with the folding indent put back where a relay dropped it
    ("Received: from a" / "by b with ESMTP" / "To: …"): an unindented line that is no
    header ends the block for a parser, losing the headers below it. Such a line is read
    as a continuation only when a header every mail has still follows in the block, so a
    body after a missing blank line stays a body. None when nothing needed it."""
    lines = raw.split(b"\n", _MAX_HEADER_LINES)
    end = next((i for i, line in enumerate(lines[:_MAX_HEADER_LINES]) if not line.strip(b"\r")), None)
    if end is None:
        return None
    known_below = [False] * (end + 1)
    for i in range(end - 1, -1, -1):
        name = lines[i].split(b":", 1)[0].strip().lower()
        known_below[i] = known_below[i + 1] or (bool(_HEADER_LINE.fullmatch(lines[i])) and name in _KNOWN_HEADERS)
    changed = False
    for i in range(1, end):
        line = lines[i]
        if line[:1] not in (b" ", b"\t") and not _HEADER_LINE.fullmatch(line) and known_below[i + 1]:
            lines[i] = b" " + line
            changed = True
    return b"\n".join(lines) if changed else None


def _attachments(read: _Read, slim: SlimMail, warnings: list[str]) -> list[Attachment]:
    """The mail's attachments, held-out ones reading from the raw mail. A held-out part of
    an attached original is listed too: the original's own copy has only its placeholder."""
    if not slim.spans:
        return read.content.attachments
    inner = _held_out_of_originals(read, slim)
    if inner:
        warnings.append("large parts of an attached message are stored as attachments of their own")
    return [_read_back(a, slim) or a for a in read.content.attachments] + inner


def _held_out_of_originals(read: _Read, slim: SlimMail) -> list[Attachment]:
    found: list[Attachment] = []
    for original in read.originals:
        found += [held for a in original.content.attachments if (held := _read_back(a, slim))]
        found += _held_out_of_originals(original, slim)
    return found


def _read_back(attachment: Attachment, slim: SlimMail) -> Attachment | None:
    """The attachment reading its content from the raw mail, if its part was held out."""
    span = slim.held_out(attachment.payload)
    if span is None:
        return None
    return replace(attachment, size=span.size, payload=b"", held_out=partial(slim.decoded, span))


def _envelope(envelope_from: str | None) -> str | None:
    address = (envelope_from or "").strip().strip("<>").strip().lower()
    return address if "@" in address else None
