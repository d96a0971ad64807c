"""Bad input gets a clear JSON error with a stable code, and changes nothing."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest

from tests.chat.conftest import ChatServer, start_chat_server

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 8


async def state(chat: ChatServer, token: str, cid: str) -> list[dict[str, object]]:
    return (await chat.call("GET", f"/v1/channels/{cid}/messages?limit=500", token, expect=200))["messages"]


async def team(chat: ChatServer) -> tuple[str, str, str]:
    ann = await chat.user("ann")
    bob = await chat.user("bob")
    ch = await chat.call("POST", "/v1/channels", ann, {"name": "t", "kind": "team", "members": ["bob"]}, expect=201)
    await chat.call("POST", "/v1/messages", ann, {"to": "t", "content": "baseline"}, expect=201)
    return ann, bob, ch["id"]


async def upload(chat: ChatServer, token: str, name: str, data: bytes, ctype: str | None = None,
                 expect: int = 201) -> dict[str, object]:
    form = aiohttp.FormData()
    form.add_field("file", data, filename=name, content_type=ctype or "application/octet-stream")
    return await chat.call("POST", "/v1/files", token, data=form, expect=expect)  # type: ignore[no-any-return]


async def test_bad_requests_change_nothing(chat: ChatServer) -> None:
    ann, bob, cid = await team(chat)
    before = await state(chat, ann, cid)
    h = {"Authorization": f"Bearer {ann}", "Content-Type": "application/json"}

    async def raw(body: bytes, status: int, code: str) -> None:
        async with chat.session.post(chat.url + "/v1/messages", data=body, headers=h) as r:
            got = await r.json()
            assert r.status == status and got["error"]["code"] == code, (r.status, got)

    await raw(b"{not json", 400, "malformed_json")
    await raw(b"[1, 2]", 400, "bad_request")
    await raw(b'{"to": "t", "content": "x", "colour": "red"}', 400, "bad_request")
    await raw(b'{"to": "t", "content": "' + b"x" * (1024 * 1024 + 10) + b'"}', 413, "message_too_large")
    await raw(b'{"to": "t", "content": "' + b"x" * 20_001 + b'"}', 400, "invalid_field")
    await raw(b'{"to": "t", "content": 5}', 400, "invalid_field")
    await raw(b'{"to": "t", "type": "poll", "content": "x"}', 400, "invalid_field")
    await raw(b'{"to": "nowhere", "content": "x"}', 404, "channel_not_found")
    await raw(b'{"to": "t", "type": "file", "attachments": [{"type": "file", "file_id": "f_nope"}]}', 404,
              "file_not_found")
    await raw(b'{"to": "t", "content": "x", "attachments": [{"type": "file", "url": "javascript:alert(1)"}]}', 400,
              "invalid_field")
    # Not a member.
    cy = await chat.user("cy")
    err = await chat.call("POST", "/v1/messages", cy, {"to": "t", "content": "let me in"}, expect=403)
    assert err["error"]["code"] == "not_a_member"
    await chat.call("GET", f"/v1/channels/{cid}/messages", cy, expect=403)
    # No or bad credentials.
    async with chat.session.post(chat.url + "/v1/messages", json={"to": "t", "content": "x"}) as r:
        assert r.status == 401 and (await r.json())["error"]["code"] == "unauthorized"
    await chat.call("POST", "/v1/messages", "not-a-token", {"to": "t", "content": "x"}, expect=401)
    await chat.call("POST", "/v1/messages", "cvk_abc_def", {"to": "t", "content": "x"}, expect=401)
    assert await state(chat, ann, cid) == before


async def test_files_sniffed_sanitised_and_guarded(chat: ChatServer) -> None:
    ann, bob, cid = await team(chat)
    up = await upload(chat, ann, "../../etc/passwd.png", PNG, "image/png")
    f = up["file"]
    assert isinstance(f, dict) and f["name"] == "passwd.png" and f["mime"] == "image/png" and f["size"] == len(PNG)
    assert f["sha256"] == hashlib.sha256(PNG).hexdigest()
    # Bob may not download it until it is posted in a channel he is in.
    await chat.call("GET", f"/v1/files/{f['id']}", bob, expect=404)
    m = await chat.call("POST", "/v1/messages", ann, {"to": cid, "type": "file",
                                                      "attachments": [{"type": "file", "file_id": f["id"]}]}, expect=201)
    assert m["attachments"][0]["name"] == "passwd.png"
    async with chat.session.get(chat.url + f"/v1/files/{f['id']}", headers={"Authorization": f"Bearer {bob}"}) as r:
        assert r.status == 200 and await r.read() == PNG
        assert r.headers["Content-Type"] == "image/png" and r.headers["X-Content-Type-Options"] == "nosniff"
        assert "attachment" in r.headers["Content-Disposition"]
    cy = await chat.user("cy")
    await chat.call("GET", f"/v1/files/{f['id']}", cy, expect=404)
    # Content that contradicts the claim, executables, windows path tricks.
    bad = await upload(chat, ann, "photo.png", b"just text, not a png", "image/png", expect=415)
    assert bad["error"]["code"] == "file_type_mismatch"
    bad = await upload(chat, ann, "notes.txt", PNG, "text/plain", expect=415)
    assert bad["error"]["code"] == "file_type_mismatch"
    bad = await upload(chat, ann, "tool", b"\x7fELF\x02\x01\x01" + bytes(100), expect=400)
    assert bad["error"]["code"] == "file_type_refused"
    bad = await upload(chat, ann, "setup.exe", b"MZ\x90\x00" + bytes(100), expect=400)
    assert bad["error"]["code"] == "file_type_refused"
    ok = await upload(chat, ann, "..\\..\\Windows\\win.ini", b"[fonts]\n", "text/plain")
    assert ok["file"]["name"] == "win.ini"  # type: ignore[index]
    # Size limit (org setting) and the org's allowed types.
    await chat.call("PATCH", "/v1/org", None, {"max_file_bytes": 1000, "allowed_file_types": ["image/*"]}, expect=200)
    bad = await upload(chat, ann, "big.txt", b"a" * 5000, "text/plain", expect=413)
    assert bad["error"]["code"] == "file_too_large"
    bad = await upload(chat, ann, "small.txt", b"abc", "text/plain", expect=400)
    assert bad["error"]["code"] == "file_type_refused"
    bad = await chat.call("POST", "/v1/files", ann, json={"file": "x"}, expect=400)
    assert bad["error"]["code"] == "bad_multipart"
    tmp = chat.api.config.files_dir / "tmp"
    assert list(tmp.iterdir()) == []


async def test_upload_beyond_json_body_limit(sqlite_chat: ChatServer) -> None:
    chat = sqlite_chat
    ann = await chat.user("ann")
    big = b"%PDF-1.4\n" + bytes(range(256)) * 12_000  # ~3 MiB: multipart is streamed, not capped at 1 MiB
    f = (await upload(chat, ann, "report.pdf", big, "application/pdf"))["file"]
    async with chat.session.get(chat.url + f"/v1/files/{f['id']}",  # type: ignore[index]
                                headers={"Authorization": f"Bearer {ann}"}) as r:
        assert r.status == 200 and await r.read() == big


@pytest.mark.parametrize("backend", ["sqlite"])
async def test_rate_limit_per_key(tmp_path: object, backend: str) -> None:
    runner, chat = await start_chat_server(tmp_path, None, rate_per_second=2.0, rate_burst=5)  # type: ignore[arg-type]
    try:
        ann = await chat.user("ann")
        bob = await chat.user("bob")
        await chat.call("POST", "/v1/channels", ann, {"name": "t", "kind": "team", "members": ["bob"]}, expect=201)
        statuses = []
        for i in range(12):
            async with chat.session.post(chat.url + "/v1/messages", json={"to": "t", "content": f"flood {i}"},
                                         headers={"Authorization": f"Bearer {ann}"}) as r:
                statuses.append(r.status)
                if r.status == 429:
                    body = await r.json()
                    assert body["error"]["code"] == "rate_limited" and int(r.headers["Retry-After"]) >= 1
        assert statuses.count(429) >= 6 and statuses[:4] == [201] * 4
        posted = (await chat.call("GET", "/v1/channels/t/messages", bob, expect=200))["messages"]
        assert len(posted) == statuses.count(201)
        # Another caller is not affected.
        await chat.call("POST", "/v1/messages", bob, {"to": "t", "content": "me too"}, expect=201)
    finally:
        await chat.session.close()
        await runner.cleanup()
