"""Git receivers on a real server: signed GitHub deliveries (push, pull request, issue, release) and GitLab's
(push, merge request, issue, release) become readable posts with links; a wrong signature or token is 401 and
posts nothing; a redelivery (same delivery id) posts once."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import urllib.parse
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import RunningServer, running_server, server_config
from tests.integrations.hooks_helpers import call, messages, team_channel

REPO = {"id": 1296269, "full_name": "acme/widgets", "html_url": "https://github.com/acme/widgets",
        "name": "widgets", "owner": {"login": "acme"}}
SENDER = {"login": "octocat", "id": 1, "type": "User"}

PUSH = {
    "ref": "refs/heads/main", "before": "6113728f27ae82c7b1a177c8d03f9e96e0adf246",
    "after": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "created": False, "deleted": False, "forced": False,
    "compare": "https://github.com/acme/widgets/compare/6113728f27ae...0d1a26e67d8f",
    "commits": [
        {"id": "0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c", "message": "Fix the [flaky] retry\n\nLonger story.",
         "url": "https://github.com/acme/widgets/commit/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c",
         "author": {"name": "Mona Lisa", "email": "mona@example.com", "username": "mona"}},
        {"id": "a10867b14bb761a232cd80139fbd4c0d33264240", "message": "Bump version",
         "url": "https://github.com/acme/widgets/commit/a10867b14bb761a232cd80139fbd4c0d33264240",
         "author": {"name": "Octo Cat", "email": "octo@example.com", "username": "octocat"}}],
    "head_commit": None, "repository": REPO, "pusher": {"name": "octocat"}, "sender": SENDER}
PULL = {
    "action": "opened", "number": 42,
    "pull_request": {"number": 42, "title": "Add retries to the uploader", "state": "open", "merged": False,
                     "html_url": "https://github.com/acme/widgets/pull/42", "body": "Retries failed uploads.\n\nCloses #7",
                     "head": {"ref": "retry-uploads"}, "base": {"ref": "main"}, "user": {"login": "octocat"}},
    "repository": REPO, "sender": SENDER}
MERGED = {**PULL, "action": "closed", "pull_request": {**PULL["pull_request"], "state": "closed", "merged": True}}
ISSUE = {"action": "opened",
         "issue": {"number": 7, "title": "Uploads fail on slow links", "html_url": "https://github.com/acme/widgets/issues/7",
                   "body": "Seen twice today.", "user": {"login": "octocat"}, "state": "open"},
         "repository": REPO, "sender": SENDER}
RELEASE = {"action": "published",
           "release": {"tag_name": "v1.4.0", "name": "Widgets 1.4", "prerelease": False, "draft": False,
                       "html_url": "https://github.com/acme/widgets/releases/tag/v1.4.0"},
           "repository": REPO, "sender": SENDER}


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[RunningServer]:
    async with running_server(server_config(tmp_path / "data")) as running:
        yield running


async def make(server: RunningServer, kind: str, channel: str) -> dict[str, Any]:
    status, hook = await call(server, "POST", f"/v1/hooks/{kind}", {"channel": channel, "name": f"{kind} widgets"})
    assert status == 201, hook
    assert hook["url"] == f"{server.url}/v1/hooks/{kind}/{hook['id']}" and len(hook["secret"]) == 64
    return hook


async def github(hook: dict[str, Any], event: str, payload: dict[str, Any], delivery: str,
                 secret: str | None = None) -> tuple[int, Any]:
    body = json.dumps(payload).encode()
    mac = hmac.new((secret or hook["secret"]).encode(), body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
               "X-Hub-Signature-256": f"sha256={mac}", "User-Agent": "GitHub-Hookshot/test"}
    async with aiohttp.ClientSession() as http:
        async with http.post(hook["url"], data=body, headers=headers) as r:
            return r.status, await r.json()


async def test_github_events_become_readable_posts_with_links(server: RunningServer) -> None:
    channel = await team_channel(server, "widgets")
    hook = await make(server, "github", channel)
    for i, (event, payload) in enumerate([("push", PUSH), ("pull_request", PULL), ("issues", ISSUE),
                                          ("release", RELEASE), ("pull_request", MERGED)]):
        assert await github(hook, event, payload, f"d-{i}") == (200, {"ok": True, "posted": True})
    posts = [m["content"] for m in await messages(server, channel)]
    assert all(m["author"] == hook["bot"] for m in await messages(server, channel))
    assert posts[0] == (
        "**octocat** pushed [2 commits](https://github.com/acme/widgets/compare/6113728f27ae...0d1a26e67d8f) to "
        "[main](https://github.com/acme/widgets/tree/main) of [acme/widgets](https://github.com/acme/widgets)\n"
        "- [0d1a26e](https://github.com/acme/widgets/commit/0d1a26e67d8f5eaf1f6ba5c57fc3c7d91ac0fd1c) "
        "Fix the (flaky) retry — mona\n"
        "- [a10867b](https://github.com/acme/widgets/commit/a10867b14bb761a232cd80139fbd4c0d33264240) Bump version — octocat")
    assert posts[1] == (
        "**octocat** opened pull request [#42 Add retries to the uploader](https://github.com/acme/widgets/pull/42) "
        "in [acme/widgets](https://github.com/acme/widgets) (`retry-uploads` → `main`)\n"
        "> Retries failed uploads.\n> \n> Closes #7")
    assert posts[2] == ("**octocat** opened issue [#7 Uploads fail on slow links](https://github.com/acme/widgets/issues/7)"
                        " in [acme/widgets](https://github.com/acme/widgets)\n> Seen twice today.")
    assert posts[3] == ("**octocat** published release [Widgets 1.4](https://github.com/acme/widgets/releases/tag/v1.4.0)"
                        " of [acme/widgets](https://github.com/acme/widgets)")
    assert posts[4].startswith("**octocat** merged pull request [#42 Add retries")


async def test_githubs_form_encoded_deliveries_post_too(server: RunningServer) -> None:
    channel = await team_channel(server, "formish")
    hook = await make(server, "github", channel)
    body = urllib.parse.urlencode({"payload": json.dumps(RELEASE)}).encode()
    mac = hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
    async with aiohttp.ClientSession() as http:
        async with http.post(hook["url"], data=body, headers={
                "Content-Type": "application/x-www-form-urlencoded", "X-GitHub-Event": "release",
                "X-GitHub-Delivery": "f-1", "X-Hub-Signature-256": f"sha256={mac}"}) as r:
            assert (r.status, await r.json()) == (200, {"ok": True, "posted": True})
    assert "Widgets 1.4" in (await messages(server, channel))[0]["content"]


async def test_a_wrong_signature_is_401_and_posts_nothing(server: RunningServer) -> None:
    channel = await team_channel(server, "guarded")
    hook = await make(server, "github", channel)
    status, body = await github(hook, "push", PUSH, "d-1", secret="not-the-secret")
    assert status == 401 and body["error"]["code"] == "invalid_signature"
    async with aiohttp.ClientSession() as http:  # no signature at all
        async with http.post(hook["url"], json=PUSH, headers={"X-GitHub-Event": "push"}) as r:
            assert r.status == 401
    # Another hook's secret does not sign for this one.
    other = await make(server, "github", channel)
    assert (await github(hook, "push", PUSH, "d-2", secret=other["secret"]))[0] == 401
    assert await messages(server, channel) == []
    # The forged deliveries did not use up the hook's rate: the real one still posts.
    assert (await github(hook, "push", PUSH, "d-3"))[0] == 200


async def test_a_redelivery_with_the_same_delivery_id_posts_once(server: RunningServer) -> None:
    channel = await team_channel(server, "dedupe")
    hook = await make(server, "github", channel)
    assert await github(hook, "issues", ISSUE, "72d3162e-cc78-11e3-81ab-4c9367dc0958") == (
        200, {"ok": True, "posted": True})
    assert await github(hook, "issues", ISSUE, "72d3162e-cc78-11e3-81ab-4c9367dc0958") == (
        200, {"ok": True, "posted": False, "duplicate": True})
    assert len(await messages(server, channel)) == 1
    # Ping and events not worth a post are answered and dropped.
    assert await github(hook, "ping", {"zen": "Keep it simple.", "hook_id": 1}, "p-1") == (
        200, {"ok": True, "posted": False})
    assert (await github(hook, "pull_request", {**PULL, "action": "labeled"}, "l-1"))[1]["posted"] is False
    assert len(await messages(server, channel)) == 1


GL_PROJECT = {"id": 15, "name": "gizmo", "path_with_namespace": "acme/gizmo", "web_url": "https://gitlab.example/acme/gizmo"}
GL_PUSH = {
    "object_kind": "push", "event_name": "push", "before": "95790bf891e76fee5e1747ab589903a6a1f80f22",
    "after": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "ref": "refs/heads/main", "user_username": "jsmith",
    "user_name": "John Smith", "project": GL_PROJECT, "total_commits_count": 1,
    "commits": [{"id": "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", "message": "Fixed readme\n",
                 "url": "https://gitlab.example/acme/gizmo/-/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
                 "author": {"name": "John Smith", "email": "jsmith@example.com"}}]}
GL_MR = {"object_kind": "merge_request", "user": {"username": "jsmith", "name": "John Smith"}, "project": GL_PROJECT,
         "object_attributes": {"iid": 3, "title": "Faster builds", "action": "merge", "state": "merged",
                               "url": "https://gitlab.example/acme/gizmo/-/merge_requests/3",
                               "source_branch": "fast", "target_branch": "main", "description": ""}}


async def gitlab(hook: dict[str, Any], event: str, payload: dict[str, Any], key: str,
                 token: str | None = None) -> tuple[int, Any]:
    headers = {"X-Gitlab-Event": event, "X-Gitlab-Token": token or hook["secret"], "Idempotency-Key": key,
               "X-Gitlab-Event-UUID": key}
    async with aiohttp.ClientSession() as http:
        async with http.post(hook["url"], json=payload, headers=headers) as r:
            return r.status, await r.json()


async def test_a_replayed_body_under_a_new_delivery_id_posts_once(server: RunningServer) -> None:
    """X-GitHub-Delivery is not covered by the signature: whoever saw one signed delivery could resend it under
    fresh ids. The body's digest is claimed too."""
    channel = await team_channel(server, "replay")
    hook = await make(server, "github", channel)
    assert await github(hook, "issues", ISSUE, "first-id") == (200, {"ok": True, "posted": True})
    for forged in ("second-id", "third-id"):
        assert await github(hook, "issues", ISSUE, forged) == (200, {"ok": True, "posted": False, "duplicate": True})
    assert await github(hook, "issues", {**ISSUE, "action": "reopened"}, "fourth-id") == (
        200, {"ok": True, "posted": True})  # another event: posted
    assert len(await messages(server, channel)) == 2


async def test_gitlab_deliveries_check_the_token_post_once_and_read_well(server: RunningServer) -> None:
    channel = await team_channel(server, "gizmo")
    hook = await make(server, "gitlab", channel)
    status, body = await gitlab(hook, "Push Hook", GL_PUSH, "k-1", token="wrong")
    assert status == 401 and body["error"]["code"] == "invalid_signature"
    assert await gitlab(hook, "Push Hook", GL_PUSH, "k-1") == (200, {"ok": True, "posted": True})
    assert (await gitlab(hook, "Push Hook", GL_PUSH, "k-1"))[1]["duplicate"] is True
    assert await gitlab(hook, "Merge Request Hook", GL_MR, "k-2") == (200, {"ok": True, "posted": True})
    posts = [m["content"] for m in await messages(server, channel)]
    assert posts == [
        "**jsmith** pushed [1 commit](https://gitlab.example/acme/gizmo/-/compare/95790bf891e7...da1560886d4f) to "
        "[main](https://gitlab.example/acme/gizmo/-/tree/main) of [acme/gizmo](https://gitlab.example/acme/gizmo)\n"
        "- [da15608](https://gitlab.example/acme/gizmo/-/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7) "
        "Fixed readme — John Smith",
        "**jsmith** merged merge request [!3 Faster builds](https://gitlab.example/acme/gizmo/-/merge_requests/3) "
        "in [acme/gizmo](https://gitlab.example/acme/gizmo)"]
    # A GitHub hook's id is not a GitLab hook.
    other = await make(server, "github", channel)
    status, _ = await gitlab({**hook, "url": hook["url"].replace(hook["id"], other["id"])}, "Push Hook", GL_PUSH, "k-3")
    assert status == 404


async def raw_post(url: str, header: bytes) -> int:
    """A POST with a header holding bytes that are not UTF-8 (an HTTP client library would not send them)."""
    parts = urllib.parse.urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    body = b"{}"
    writer.write(b"POST " + parts.path.encode() + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 + header + b"\r\nX-GitHub-Event: push\r\nX-Gitlab-Event: Push Hook\r\nConnection: close\r\n"
                 + b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    return int(status_line.split()[1])


async def test_signature_headers_with_odd_bytes_are_401_not_500(server: RunningServer) -> None:
    channel = await team_channel(server, "odd-bytes")
    github_hook, gitlab_hook = await make(server, "github", channel), await make(server, "gitlab", channel)
    assert await raw_post(github_hook["url"], b"X-Hub-Signature-256: sha256=\xff\xfe\xc3") == 401
    assert await raw_post(gitlab_hook["url"], b"X-Gitlab-Token: \xff\xfetoken") == 401
    assert await raw_post(gitlab_hook["url"], "X-Gitlab-Token: t\u00f6ken".encode()) == 401
    assert await messages(server, channel) == []
