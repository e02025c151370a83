"""The language a customer wrote in (issue 19: German mail was labelled en)."""

from __future__ import annotations

import pytest

from shared.complaints.language import LANGUAGES, REPLY_LANGUAGES, detect_language


@pytest.mark.parametrize(("text", "language"), [
    ("我的车刹车有异响，去店里两次了还没修好。", "zh"),
    ("我的車剎車有異響，去店裡兩次了還沒修好。", "zh-Hant"),
    ("The brakes of my car squeal and the dealer has not called back.", "en"),
    ("Die Bremsen meines Autos quietschen und die Werkstatt hat sich nicht gemeldet.", "de"),
    ("Grüße, ich bin mit der Reparatur nicht zufrieden.", "de"),
    ("Les freins de ma voiture font du bruit et je ne suis pas satisfait du service.", "fr"),
    ("Los frenos de mi coche hacen ruido y el taller no me ha llamado.", "es"),
    ("I freni della mia auto fanno rumore e non sono contento della officina.", "it"),
    ("De remmen van mijn auto piepen en de garage heeft niet teruggebeld.", "nl"),
    ("Os travões do meu carro fazem barulho e a oficina não me ligou.", "pt"),
    ("Тормоза моей машины скрипят, сервис не перезвонил.", "ru"),
    ("ブレーキから異音がします。販売店から連絡がありません。", "ja"),
    ("브레이크에서 소리가 나고 대리점에서 연락이 없습니다.", "ko"),
    ("Hamba ya gari langu inapiga kelele sana kila siku asubuhi", "other"),
    ("", "en"),
])
def test_languages_are_told_apart(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_a_quoted_reply_in_another_language_does_not_decide() -> None:
    text = ("Die Werkstatt hat wieder nicht angerufen, ich warte seit einer Woche.\n"
            "> 尊敬的客户，您的投诉已受理，我们将在一小时内与您联系。\n> 极光汽车客户关爱中心")
    assert detect_language(text) == "de"


def test_every_reply_language_is_a_case_language() -> None:
    assert set(REPLY_LANGUAGES) <= set(LANGUAGES) and "other" in LANGUAGES
