"""The web client's message catalogues: English and 简体中文 have the same keys, and every key the
client's code and HTML name (t("…"), data-i18n, data-i18n-attr) is in them."""

from __future__ import annotations

import re
from pathlib import Path

WEB = Path(__file__).resolve().parent.parent / "web"
KEY = re.compile(r'^\s*"([^"]+)":', re.M)


def catalogue(name: str) -> set[str]:
    return set(KEY.findall((WEB / "i18n" / name).read_text(encoding="utf-8")))


def used_keys() -> set[str]:
    used: set[str] = set()
    for path in [*WEB.rglob("*.js"), *WEB.rglob("*.html")]:
        if path.parent.name == "i18n":
            continue
        text = path.read_text(encoding="utf-8")
        used.update(re.findall(r'\bt\("([a-zA-Z]+\.[A-Za-z_.]+)"', text))
        used.update(re.findall(r'\btr\("([a-zA-Z]+\.[A-Za-z_.]+)"', text))
        used.update(re.findall(r'data-i18n="([^"]+)"', text))
        used.update(re.findall(r'dataset\.i18n = "([^"]+)"', text))
        for attrs in re.findall(r'data-i18n-attr="([^"]+)"', text):
            used.update(pair.split(":", 1)[1].strip() for pair in attrs.split(";") if ":" in pair)
    return used


def test_both_languages_have_the_same_keys() -> None:
    english, chinese = catalogue("en.js"), catalogue("zh-CN.js")
    assert len(english) > 150
    assert english - chinese == set(), "missing in zh-CN.js"
    assert chinese - english == set(), "not in en.js"


def test_every_key_the_client_names_exists() -> None:
    used = used_keys()
    assert {"landing.heading", "prejoin.join", "chat.send", "call.inCall"} <= used  # the scan finds them
    assert used - catalogue("en.js") == set()
