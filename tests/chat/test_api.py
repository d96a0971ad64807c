"""The REST API end to end on a real server, for both backends."""

from __future__ import annotations

import time

from chat.jobs import run_reminders
from tests.chat.conftest import ChatServer


async def setup_team(chat: ChatServer) -> tuple[str, str, str]:
    ann = await chat.user("ann", department="eng/media")
    bob = await chat.user("bob", department="eng")
    ch = await chat.call("POST", "/v1/channels", ann, {"name": "proj", "kind": "team", "members": ["bob"]}, expect=201)
    assert ch["members"] == ["ann", "bob"]
    return ann, bob, ch["id"]


async def test_an_at_sign_inside_a_link_is_no_mention(chat: ChatServer) -> None:
    ann, _, cid = await setup_team(chat)
    linked = await chat.call("POST", "/v1/messages", ann, {"to": cid, "content": "see https://x.example/@bob/page @bob"},
                             expect=201)
    assert linked["mentions"] == ["bob"]  # the one outside the link


async def test_post_history_idempotent_thread_edit_recall(chat: ChatServer) -> None:
    ann, bob, cid = await setup_team(chat)
    body = {"to": "proj", "content": "hello @bob", "client_id": "c-1"}
    first = await chat.call("POST", "/v1/messages", ann, body, expect=201)
    retry = await chat.call("POST", "/v1/messages", ann, body, expect=200)
    assert retry["id"] == first["id"] and first["mentions"] == ["bob"] and first["channel"] == cid
    reply = await chat.call("POST", "/v1/messages", bob, {"to": cid, "content": "hi", "thread": first["id"]}, expect=201)
    nested = await chat.call("POST", "/v1/messages", ann, {"to": cid, "content": "re", "thread": reply["id"]}, expect=201)
    assert reply["thread"] == first["id"] and nested["thread"] == first["id"]
    hist = await chat.call("GET", f"/v1/channels/{cid}/messages?limit=2", bob, expect=200)
    assert [m["content"] for m in hist["messages"]] == ["hi", "re"] and hist["has_more"]
    older = await chat.call("GET", f"/v1/channels/proj/messages?before={hist['prev']}", bob, expect=200)
    assert [m["content"] for m in older["messages"]] == ["hello @bob"]
    fwd = await chat.call("GET", f"/v1/channels/{cid}/messages?after={first['ord']}", bob, expect=200)
    assert [m["content"] for m in fwd["messages"]] == ["hi", "re"]
    thread = await chat.call("GET", f"/v1/channels/{cid}/messages?thread={first['id']}", bob, expect=200)
    assert len(thread["messages"]) == 2

    edited = await chat.call("PATCH", f"/v1/messages/{first['id']}", ann, {"content": "hello all"}, expect=200)
    assert edited["content"] == "hello all" and edited["edits"][0]["content"] == "hello @bob"
    err = await chat.call("PATCH", f"/v1/messages/{first['id']}", bob, {"content": "x"}, expect=403)
    assert err["error"]["code"] == "not_permitted"
    react = await chat.call("POST", f"/v1/messages/{first['id']}/reactions", bob, {"emoji": "👍"}, expect=200)
    assert react["reactions"] == {"👍": ["bob"]}
    unreact = await chat.call("DELETE", f"/v1/messages/{first['id']}/reactions/👍", bob, expect=200)
    assert unreact["reactions"] == {}

    assert (await chat.call("DELETE", f"/v1/messages/{first['id']}", bob, expect=403))["error"]["code"] == "not_permitted"
    gone = await chat.call("DELETE", f"/v1/messages/{first['id']}", ann, expect=200)
    assert gone["deleted"] and gone["content"] == "" and gone["edits"] == [] and gone["deleted_by"] == "ann"
    again = await chat.call("DELETE", f"/v1/messages/{first['id']}", ann, expect=409)
    assert again["error"]["code"] == "message_recalled"
    # Unread counts and read marks.
    chans = await chat.call("GET", "/v1/channels", bob, expect=200)
    assert chans["channels"][0]["unread"] == 1  # ann's reply after bob's own post (which marked the rest read)
    await chat.call("POST", f"/v1/channels/{cid}/read", bob, {"ord": nested["ord"]}, expect=200)
    chans = await chat.call("GET", "/v1/channels", bob, expect=200)
    assert chans["channels"][0]["unread"] == 0


async def test_recall_window_and_admin_recall(chat: ChatServer) -> None:
    ann, bob, cid = await setup_team(chat)
    await chat.call("PATCH", "/v1/org", None, {"recall_window_seconds": 0}, expect=200)
    m = await chat.call("POST", "/v1/messages", ann, {"to": cid, "content": "oops"}, expect=201)
    time.sleep(0.01)
    err = await chat.call("DELETE", f"/v1/messages/{m['id']}", ann, expect=403)
    assert err["error"]["code"] == "recall_window_closed"
    still = await chat.call("GET", f"/v1/messages/{m['id']}", ann, expect=200)
    assert still["content"] == "oops" and not still["deleted"]
    boss = await chat.user("boss", role="admin")
    await chat.call("POST", f"/v1/channels/{cid}/members", boss, {"add": ["boss"]}, expect=200)
    assert (await chat.call("DELETE", f"/v1/messages/{m['id']}", boss, expect=200))["deleted_by"] == "boss"


async def test_roles_table_enforced(chat: ChatServer) -> None:
    ann, bob, cid = await setup_team(chat)
    guest = await chat.user("gus", role="guest")
    err = await chat.call("POST", "/v1/channels", guest, {"name": "g", "kind": "team"}, expect=403)
    assert err["error"]["code"] == "not_permitted"
    assert (await chat.call("GET", "/v1/users", guest, expect=403))["error"]["code"] == "not_permitted"
    await chat.call("PATCH", "/v1/org", ann, {"members_create_channels": False}, expect=403)
    await chat.call("PATCH", "/v1/org", None, {"members_create_channels": False}, expect=200)
    await chat.call("POST", "/v1/channels", bob, {"name": "nope", "kind": "team"}, expect=403)
    await chat.call("POST", "/v1/channels", bob, {"kind": "group", "members": ["ann"]}, expect=201)
    # Only admins change roles; nobody but an owner makes owners.
    await chat.call("PATCH", "/v1/users/bob", ann, {"role": "admin"}, expect=403)
    assert (await chat.call("PATCH", "/v1/users/bob", None, {"role": "admin"}, expect=200))["role"] == "admin"
    await chat.call("PATCH", "/v1/users/bob", bob, {"role": "owner"}, expect=403)
    # Direct chats are found again, not duplicated.
    d1 = await chat.call("POST", "/v1/channels", ann, {"kind": "direct", "members": ["bob"]}, expect=201)
    d2 = await chat.call("POST", "/v1/channels", bob, {"kind": "direct", "members": ["ann"]}, expect=200)
    assert d1["id"] == d2["id"] and d1["members"] == ["ann", "bob"]
    tree = await chat.call("GET", "/v1/departments", ann, expect=200)
    eng = tree["children"][0]
    assert eng["name"] == "eng" and eng["users"] == ["bob"] and eng["children"][0]["users"] == ["ann"]
    # An API key acts as a named bot user.
    key_user = await chat.call("GET", "/v1/me", None, expect=200)
    assert key_user["user"]["login"] == "ops" and key_user["user"]["role"] == "admin"


async def test_nobody_acts_on_a_higher_role_and_keys_do_not_rewrite_roles(chat: ChatServer) -> None:
    await chat.user("olga", role="owner")
    adam = await chat.user("adam", role="admin")
    # An admin can neither mint a token for an owner nor change an owner's role (or name, or department).
    err = await chat.call("POST", "/v1/users/olga/tokens", adam, {}, expect=403)
    assert err["error"]["code"] == "not_permitted"
    await chat.call("PATCH", "/v1/users/olga", adam, {"role": "member"}, expect=403)
    await chat.call("PATCH", "/v1/users/olga", adam, {"department": "eng"}, expect=403)
    # The owner (here the operator's key made an owner) still can.
    await chat.call("POST", "/v1/users/adam/tokens", await chat.user("olga", role="owner"), {}, expect=201)
    # The API key's user is demoted; its next call does not undo that.
    await chat.call("GET", "/v1/me", None, expect=200)
    await chat.call("PATCH", "/v1/users/ops", await chat.user("olga", role="owner"), {"role": "member"}, expect=200)
    me = await chat.call("GET", "/v1/me", None, expect=200)
    assert me["user"]["role"] == "member"


async def test_tasks_reminders_and_my_tasks(chat: ChatServer) -> None:
    ann, bob, cid = await setup_team(chat)
    due = time.time() + 120
    t = await chat.call("POST", "/v1/messages", ann, {"to": cid, "type": "task",
                                                      "task": {"title": "写周报", "assignee": "bob", "due": due}},
                        expect=201)
    assert t["task"]["status"] == "open" and t["task"]["assignee"] == "bob"
    mine = await chat.call("GET", "/v1/tasks?assignee=me", bob, expect=200)
    assert [x["id"] for x in mine["tasks"]] == [t["id"]]
    await chat.call("POST", "/v1/messages", ann, {"to": cid, "type": "task", "task": {"title": "x", "assignee": "zed"}},
                    expect=400)
    # Reminder before the due time (org default: an hour before), then overdue, each once.
    assert await run_reminders(chat.api.service, time.time()) == 1
    assert await run_reminders(chat.api.service, time.time()) == 0
    assert await run_reminders(chat.api.service, due + 1) == 1
    hist = await chat.call("GET", f"/v1/channels/{cid}/messages", bob, expect=200)
    texts = [m["content"] for m in hist["messages"] if m["author"] == "convene"]
    assert len(texts) == 2 and "due at" in texts[0] and "overdue" in texts[1]
    dms = [c for c in (await chat.call("GET", "/v1/channels", bob))["channels"] if c["kind"] == "direct"]
    assert len(dms) == 1 and dms[0]["unread"] == 2
    upd = await chat.call("PATCH", f"/v1/tasks/{t['id']}", bob, {"status": "in_progress", "note": "half done"}, expect=200)
    assert upd["task"]["status"] == "in_progress" and upd["task"]["notes"][0]["text"] == "half done"
    cy = await chat.user("cy")
    await chat.call("PATCH", f"/v1/tasks/{t['id']}", cy, {"status": "done"}, expect=404)
    await chat.call("PATCH", f"/v1/tasks/{t['id']}", bob, {"status": "finished"}, expect=400)
    await chat.call("PATCH", f"/v1/tasks/{t['id']}", bob, {"status": "done"}, expect=200)
    assert (await chat.call("GET", "/v1/tasks", bob, expect=200))["tasks"] == []
    assert len((await chat.call("GET", "/v1/tasks?status=all", bob, expect=200))["tasks"]) == 1


async def test_sync_and_search(chat: ChatServer) -> None:
    ann, bob, cid = await setup_team(chat)
    start = (await chat.call("GET", "/v1/sync", bob, expect=200))["next"]
    a = await chat.call("POST", "/v1/messages", ann, {"to": cid, "content": "项目进度更新：完成80%"}, expect=201)
    b = await chat.call("POST", "/v1/messages", ann, {"to": cid, "content": "Release Notes"}, expect=201)
    await chat.call("PATCH", f"/v1/messages/{a['id']}", ann, {"content": "项目进度更新：完成90%"}, expect=200)
    await chat.call("DELETE", f"/v1/messages/{b['id']}", ann, expect=200)
    other = await chat.call("POST", "/v1/channels", ann, {"name": "private", "kind": "team"}, expect=201)
    await chat.call("POST", "/v1/messages", ann, {"to": other["id"], "content": "release secret"}, expect=201)
    got = await chat.call("GET", f"/v1/sync?since={start}", bob, expect=200)
    assert [m["content"] for m in got["updated"]] == ["项目进度更新：完成90%"]
    assert [d["id"] for d in got["deleted"]] == [b["id"]]
    again = await chat.call("GET", f"/v1/sync?since={got['next']}", bob, expect=200)
    assert again["updated"] == [] and again["deleted"] == []
    paged = await chat.call("GET", f"/v1/sync?since={start}&limit=1", bob, expect=200)
    assert paged["has_more"] and len(paged["updated"]) + len(paged["deleted"]) == 1
    for q in ("项目", "进度", "项目进度"):
        hits = await chat.call("GET", f"/v1/search?q={q}", bob, expect=200)
        assert [m["id"] for m in hits["messages"]] == [a["id"]], q
    assert (await chat.call("GET", "/v1/search?q=RELEASE", ann, expect=200))["messages"][0]["content"] == "release secret"
    assert (await chat.call("GET", "/v1/search?q=release", bob, expect=200))["messages"] == []
    assert (await chat.call("GET", "/v1/search?q=项目&from=bob", bob, expect=200))["messages"] == []
    assert len((await chat.call("GET", "/v1/search?q=项目&channel=proj", bob, expect=200))["messages"]) == 1
    await chat.call("GET", "/v1/search?q=release&channel=private", bob, expect=403)


async def test_openapi_lists_every_route(chat: ChatServer) -> None:
    doc = await chat.call("GET", "/v1/openapi.json", expect=200)
    assert doc["openapi"].startswith("3.")
    for route in chat.api_routes():
        method, path = route
        assert method.lower() in doc["paths"].get(path, {}), route


async def test_retention_policy_per_org_and_channel(chat: ChatServer) -> None:
    from chat.model import Message, new_id

    ann, bob, cid = await setup_team(chat)
    other = await chat.call("POST", "/v1/channels", ann, {"name": "short", "kind": "team"}, expect=201)
    await chat.call("PATCH", f"/v1/channels/{other['id']}", ann, {"retention_days": 7}, expect=403)
    await chat.call("PATCH", f"/v1/channels/{other['id']}", None, {"retention_days": 7}, expect=200)
    store, now = chat.api.store, time.time()

    async def aged(channel: str, days: float) -> str:
        m, _ = await store.insert_message(Message(id=new_id("m_"), channel_id=channel, author="ann", type="text",
                                                  content=f"{days} days old", created_at=now - days * 86400))
        return m.id

    old_team, kept_team = await aged(cid, 200), await aged(cid, 30)
    old_short, kept_short = await aged(other["id"], 10), await aged(other["id"], 1)
    assert chat.api.retention is not None
    assert (await chat.api.retention.run(now)).messages == 2
    for mid, gone in ((old_team, True), (kept_team, False), (old_short, True), (kept_short, False)):
        await chat.call("GET", f"/v1/messages/{mid}", ann, expect=404 if gone else 200)
    assert (await chat.call("GET", "/v1/search?q=old", ann, expect=200))["messages"].__len__() == 2
    bad = await chat.call("PATCH", "/v1/org", None, {"retention_days": "forever"}, expect=400)
    assert bad["error"]["code"] == "invalid_field"
    await chat.call("PATCH", "/v1/org", None, {"colour": 1}, expect=400)
