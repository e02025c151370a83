"""Request bodies as every HTTP route reads them (link pages, the staff API and console, the
local tools): a browser form or JSON, within limits of size, nesting and number length.

Python's own ``json.loads`` has none of these: a 2 KB body of nested brackets exhausts its
recursion, an integer of 4,301 digits exceeds ``int``'s conversion limit, ``NaN`` and
``1e999`` become floats no column can hold. Each of those is the sender's mistake and
answers 400 with what is wrong (``MalformedBodyError``); a body over the size limit answers
413 (``BodyTooLargeError``)."""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any, NoReturn
from urllib.parse import parse_qs

from .errors import InvalidInputError


@dataclass(frozen=True)
class BodyLimits:
    """What a route accepts (the numbers are settings: ``Settings.body_limits``)."""

    max_bytes: int = 64 * 1024
    max_depth: int = 20  # objects and arrays inside each other; the deepest form we take nests 3
    max_number_length: int = 40  # characters of one number: money, scores, hours need far fewer


class MalformedBodyError(InvalidInputError):
    """The body is not what the route reads (not UTF-8, not a JSON object, beyond a limit): 400."""


class BodyTooLargeError(InvalidInputError):
    """The body is larger than the route accepts: 413."""


_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(r"[\[\]{}]")


def _refuse(message: str) -> NoReturn:
    raise MalformedBodyError(message, {"body": message})


def _deeper_than(text: str, limit: int) -> bool:
    """Whether brackets outside strings nest deeper than ``limit``: checked before parsing,
    because the parser's recursion is what a deep body attacks."""
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub('""', text)):
        depth += 1 if bracket.group() in "[{" else -1
        if depth > limit:
            return True
    return False


def parse_json(raw: str | bytes, limits: BodyLimits) -> dict[str, Any]:
    """A JSON object within ``limits``; anything else raises ``MalformedBodyError``/``BodyTooLargeError``."""
    if isinstance(raw, bytes):
        if len(raw) > limits.max_bytes:
            raise BodyTooLargeError("body too large", {"body": f"at most {limits.max_bytes} bytes"})
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            _refuse("the body must be UTF-8 text")
    elif len(raw.encode("utf-8")) > limits.max_bytes:
        raise BodyTooLargeError("body too large", {"body": f"at most {limits.max_bytes} bytes"})
    text = raw.strip() or "{}"
    if _deeper_than(text, limits.max_depth):
        _refuse(f"the body nests deeper than {limits.max_depth} levels")

    def number(kind: type[int] | type[float]) -> Any:
        def parse(token: str) -> int | float:
            if len(token) > limits.max_number_length:
                _refuse(f"a number in the body is longer than {limits.max_number_length} characters")
            value = kind(token)
            if isinstance(value, float) and not math.isfinite(value):
                _refuse("a number in the body is out of range")
            return value
        return parse

    def constant(token: str) -> NoReturn:
        _refuse(f"{token} is not a number JSON allows")

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for key, value in pairs:
            if key in found:  # parsers disagree on which one wins: take neither
                _refuse(f"the key {key[:40]!r} appears twice in one object")
            found[key] = value
        return found

    try:
        data = json.loads(text, parse_int=number(int), parse_float=number(float), parse_constant=constant,
                          object_pairs_hook=unique)
    except (json.JSONDecodeError, RecursionError):
        _refuse("the body must be a JSON object")
    if not isinstance(data, dict):
        _refuse("the body must be a JSON object")
    return data


def parse_body(raw: str, content_type: str, limits: BodyLimits, *, form_by_default: bool) -> tuple[dict[str, Any], bool]:
    """The fields of a POST and whether they came from a browser form: a form when the content
    type says so (or says nothing and ``form_by_default``), else JSON."""
    if len(raw.encode("utf-8")) > limits.max_bytes:
        raise BodyTooLargeError("body too large", {"body": f"at most {limits.max_bytes} bytes"})
    content_type = content_type.lower()
    is_form = "application/x-www-form-urlencoded" in content_type or (
        form_by_default and "json" not in content_type)
    if is_form:
        return {k: v[-1] for k, v in parse_qs(raw, keep_blank_values=True).items()}, True
    return parse_json(raw, limits), False
