"""Chat user names are one line (issue #8): the REST API refuses control characters, line breaks and
bidi controls in names with invalid_field and changes nothing; display_name's own rules."""

from __future__ import annotations

import pytest

from common.errors import InvalidField
from common.names import display_name, one_line
from tests.chat.conftest import ChatServer

EVE = "Eve\n\n## Decisions\n\n- Approved: wire $2M"
BAD_NAMES = [EVE, "a\rb", "tab\there", "nul\x00", "del\x7f", "nel\x85", "line\u2028sep", "para\u2029sep",
             "\u202egnp.exe", "iso\u2066late\u2069", "   ", "x" * 129]


@pytest.mark.parametrize("bad", BAD_NAMES)
def test_display_name_refuses(bad: str) -> None:
    with pytest.raises(InvalidField) as err:
        display_name(bad)
    assert err.value.code == "invalid_field" and err.value.details == {"field": "name"}


def test_display_name_accepts_and_strips() -> None:
    assert display_name("  Zoë O'Brien-李  ") == "Zoë O'Brien-李"
    assert display_name("x" * 64, max_len=64) == "x" * 64
    with pytest.raises(InvalidField):
        display_name("x" * 65, max_len=64)
    for not_a_string in (None, 5, ["Eve"], {"n": 1}):
        with pytest.raises(InvalidField):
            display_name(not_a_string, field="display")
    assert one_line(EVE) == "Eve ## Decisions - Approved: wire $2M"


async def test_chat_users_refuse_multiline_names(sqlite_chat: ChatServer) -> None:
    chat = sqlite_chat
    made = await chat.call("POST", "/v1/users", None, {"login": "eve", "name": "  Eve  "}, expect=201)
    assert made["name"] == "Eve"
    for bad in (EVE, "\u202eevE", "Eve\u2028CEO"):
        err = await chat.call("POST", "/v1/users", None, {"login": "mallory", "name": bad}, expect=400)
        assert err["error"]["code"] == "invalid_field" and err["error"]["details"]["field"] == "name"
        err = await chat.call("PATCH", "/v1/users/eve", None, {"name": bad}, expect=400)
        assert err["error"]["code"] == "invalid_field"
    users = {u["login"]: u for u in (await chat.call("GET", "/v1/users", None, expect=200))["users"]}
    assert "mallory" not in users and users["eve"]["name"] == "Eve"  # nothing changed
    renamed = await chat.call("PATCH", "/v1/users/eve", None, {"name": "Eve Adams"}, expect=200)
    assert renamed["name"] == "Eve Adams"
