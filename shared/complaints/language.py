"""The language a customer wrote in, and the one we answer in (policy.md §3: the case
records its language).

Chinese (Simplified or Traditional) is told from Latin text by how many Chinese
characters stand against Latin words; Japanese and Korean by their own scripts, Russian by
Cyrillic; among Latin-script languages by their commonest short words and letters. A case
records what was found, ``other`` where it is none of these. We answer only in languages we
have templates for (``REPLY_LANGUAGES``); a customer who wrote in another is answered in the
brand's fallback language (``tenant.Brand.reply_language``).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import get_args

from .models import Language

REPLY_LANGUAGES: tuple[Language, ...] = ("zh", "zh-Hant", "en")
LANGUAGES: tuple[Language, ...] = get_args(Language)

_HAN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_HANGUL = re.compile(r"[\uac00-\ud7af\u1100-\u11ff]")
_CYRILLIC = re.compile(r"[\u0400-\u04ff]")
_LATIN_WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ɏ]{2,}")
_QUOTED = re.compile(r"^\s*>.*$", re.MULTILINE)  # a quoted reply is someone else's words

def _words(spaced: str) -> frozenset[str]:
    return frozenset(spaced.split())


# The short words each language cannot do without (articles, pronouns, auxiliaries).
_FUNCTION_WORDS: dict[Language, frozenset[str]] = {
    "en": _words("the and is are was to of in for my with have has not this that you it on be we our your "
                    "would could please"),
    "de": _words("der die das und ist nicht ich mit ein eine einen den dem zu auf für sie wir es von bei auch "
                    "noch wie sich haben hier bitte mein meine mir uns aber oder wenn schon wurde"),
    "fr": _words("le les et est une des pas je vous pour avec que qui dans sur au du mon ma mes nous ne "
                    "cette été très mais"),
    "es": _words("el los las y es una que no por con para mi del se lo su muy pero está fue"),
    "it": _words("il che non per una sono con del della mi ho io gli è ma anche questo molto"),
    "nl": _words("het een en niet ik is van met dat op voor zijn wij mijn maar ook geen heb"),
    "pt": _words("o os que não uma com para do da meu minha é em mas muito foi está"),
}
# Letters only some of them use.
_LETTERS: dict[Language, str] = {"de": "äöüß", "fr": "éèêçàùœ", "es": "ñ¿¡", "pt": "ãõ", "it": "ì"}
_ENOUGH = 2  # function words before a Latin-script language is named
_UNNAMED = 5  # Latin words with no function word of ours among them: another language


def detect_language(text: str) -> Language:
    """The language of a customer's own words (quoted lines left out)."""
    own = _QUOTED.sub("", text)
    han = _HAN.findall(own)
    latin_words = _LATIN_WORD.findall(own)
    kana, hangul = len(_KANA.findall(own)), len(_HANGUL.findall(own))
    if kana >= 2 and kana + len(han) >= len(latin_words):
        return "ja"
    if hangul >= 2 and hangul >= len(latin_words):
        return "ko"
    if han and 2 * len(han) >= len(latin_words):
        traditional = sum(1 for ch in han if _script(ch) == "traditional")
        simplified = sum(1 for ch in han if _script(ch) == "simplified")
        return "zh-Hant" if traditional > simplified else "zh"
    if len(_CYRILLIC.findall(own)) > sum(len(w) for w in latin_words):
        return "ru"
    return _latin(latin_words)


def _latin(words: list[str]) -> Language:
    lowered = [w.lower() for w in words]
    scores = {lang: sum(1 for w in lowered if w in vocabulary) for lang, vocabulary in _FUNCTION_WORDS.items()}
    joined = "".join(lowered)
    for lang, letters in _LETTERS.items():
        scores[lang] += sum(joined.count(ch) for ch in letters) // 2
    ranked = sorted(scores.items(), key=lambda item: item[1], reverse=True)
    (best, score), (_, second) = ranked[0], ranked[1]
    if score >= _ENOUGH and score > second:
        return best
    if len(words) >= _UNNAMED and score == 0:
        return "other"
    return "en"  # too little to tell: English is what the templates and most brands share


@lru_cache(maxsize=8192)
def _script(char: str) -> str | None:
    """Simplified when only GB2312 has the character, Traditional when only Big5 has it."""
    in_gb, in_big5 = _encodes(char, "gb2312"), _encodes(char, "big5")
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
