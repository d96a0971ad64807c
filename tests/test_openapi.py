"""The OpenAPI document at /v1/openapi.json describes the whole REST surface, and the server keeps to it.

Every route of a running server has an operation and every operation a route (pages and static files aside);
request bodies refuse unknown fields as the handlers do; and schemathesis fuzzes every operation against a
real server (marked slow) for 5xx answers and answers that break the document.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import RunningServer, running_server, server_config
from tests.test_authz_matrix import walked_routes

PAGES = {("GET", "/"), ("GET", "/r/{room}"), ("GET", "/m/{meeting_id}"), ("GET", "/chat"), ("GET", "/signin"), ("GET", "/static"),
         ("GET", "/admin"), ("GET", "/admin/stats")}
# Operations anyone may call (security []): the document itself, guest joins, the sockets (they authenticate
# in their first message), sign-in and file downloads, which also take a signed link instead of a credential.
PUBLIC = {("GET", "/v1/openapi.json"), ("GET", "/v1/auth/session"), ("POST", "/v1/rooms/{room}/join"), ("GET", "/v1/rooms/{room}/ws"),
          ("GET", "/v1/chat/ws"), ("GET", "/v1/files/{id}"), ("GET", "/healthz"), ("GET", "/readyz"),
          ("POST", "/v1/auth/login"), ("POST", "/v1/auth/logout"),  # sign-in takes a password, not a credential
          # Single sign-on: a browser on its way to or back from the identity provider has no credential yet.
          ("GET", "/v1/auth/methods"), ("GET", "/v1/auth/oidc/start"), ("GET", "/v1/auth/oidc/callback"),
          # Webhook receivers: the URL's secret, the signature or the token is the credential, not a bearer.
          ("POST", "/v1/hooks/incoming/{id}/{secret}"), ("POST", "/v1/hooks/github/{id}"),
          ("POST", "/v1/hooks/gitlab/{id}"),
          # A slash command's response_url: the URL (its secret) is the credential.
          ("POST", "/v1/commands/responses/{id}/{secret}")}
METHODS = {"get", "post", "put", "patch", "delete"}


async def document(server: RunningServer) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/v1/openapi.json") as r:
            assert r.status == 200
            doc: dict[str, Any] = await r.json()
            return doc


def operations(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    return {(method.upper(), path): op for path, ops in doc["paths"].items() for method, op in ops.items()
            if method in METHODS}


def resolve(doc: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = doc["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    return schema


async def test_every_route_has_an_operation_and_every_operation_a_route(server: RunningServer) -> None:
    doc = await document(server)
    assert doc["openapi"].startswith("3.1")
    routes = walked_routes(server.app) - PAGES
    documented = set(operations(doc))
    assert not routes - documented, f"routes the OpenAPI document leaves out: {sorted(routes - documented)}"
    assert not documented - routes, f"operations without a route: {sorted(documented - routes)}"


async def test_the_document_is_served_without_chat_too(tmp_path: Path) -> None:
    """A media worker (no chat) still describes what it serves: rooms, captions, metrics."""
    async with running_server(server_config(tmp_path / "data", media_only=True)) as media:
        doc = await document(media)
        assert set(operations(doc)) == walked_routes(media.app) - PAGES
        assert "/v1/messages" not in doc["paths"]


async def test_operations_say_how_to_call_them(server: RunningServer) -> None:
    doc = await document(server)
    assert doc["security"] == [{"bearer": []}]
    assert doc["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    for key, op in operations(doc).items():
        security = op.get("security", doc["security"])
        if key in PUBLIC:
            assert security == [] or {} in security, (key, security)
        else:
            assert security == [{"bearer": []}], (key, security)
        responses = op["responses"]
        # Success is a 2xx, a socket upgrade (101), or a redirect for the browser pages (single sign-on: 302).
        assert any(code.startswith("2") or code in ("101", "302") for code in responses), key
        for code, response in responses.items():
            if code[0] in "45" or code == "default":
                schema = response["content"]["application/json"]["schema"]
                assert resolve(doc, schema) is doc["components"]["schemas"]["Error"] or \
                    schema == {"$ref": "#/components/schemas/Error"}, (key, code)
        path = key[1]
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        wanted = set(re.findall(r"\{(\w+)\}", path))  # also a parameter inside a segment: /{id}.ics
        assert declared == wanted, (key, declared, wanted)
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            # The handlers read JSON bodies with a fixed set of fields and refuse others (bad_request).
            assert resolve(doc, body["schema"]).get("additionalProperties") is False, key


async def test_a_body_field_the_document_does_not_list_is_refused(server: RunningServer) -> None:
    """What `additionalProperties: false` promises, asked of the server for each operation with a JSON body."""
    doc = await document(server)
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {server.api_key}"}) as http:
        for (method, path), op in operations(doc).items():
            if "application/json" not in op.get("requestBody", {}).get("content", {}):
                continue
            url = server.url + path.replace("{room}", "fuzz").replace("{login}", "nobody").replace("{id}", "x")
            async with http.request(method, url, json={"surely_not_a_field": 1}) as r:
                body = await r.json()
                assert r.status in (400, 404), (method, path, r.status, body)
                if r.status == 400:
                    assert body["error"]["code"] in ("bad_request", "invalid_field"), (method, path, body)


SCHEMATHESIS = Path(sys.executable).parent / "schemathesis"


@pytest.mark.slow
async def test_schemathesis_finds_no_server_error_and_no_answer_off_the_document(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every operation (the sockets aside) with up to 10 generated requests each, valid and invalid, deterministic,
    as the admin key: no 5xx, and every answer fits the document (its schema for that status, or Error)."""
    if not SCHEMATHESIS.exists():
        pytest.skip("schemathesis is not installed (pip install -e '.[test]')")
    # The fuzzer's admin key posts many times a second; the chat rate limit would answer most of it with 429.
    monkeypatch.setenv("CONVENE_CHAT_RATE", "10000")
    monkeypatch.setenv("CONVENE_CHAT_BURST", "10000")
    async with running_server(server_config(tmp_path / "data", guest_joins_per_minute=100_000)) as server:
        proc = await asyncio.create_subprocess_exec(
            str(SCHEMATHESIS), "run", f"{server.url}/v1/openapi.json",
            "-H", f"Authorization: Bearer {server.api_key}",
            "--checks", "not_a_server_error,response_schema_conformance",
            "--max-examples", "10", "--generation-deterministic",
            "--phases", "examples,coverage,fuzzing", "--exclude-path-regex", "/ws$",
            "--workers", "1", "--max-failures", "50", "--request-timeout", "10", "--no-color",
            cwd=tmp_path, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
            env={**os.environ, "SCHEMATHESIS_TELEMETRY": "false"})
        out, _ = await asyncio.wait_for(proc.communicate(), 240)
    report = out.decode(errors="replace")
    assert proc.returncode == 0, report[-20000:]
    assert "Tested: " in report, report[-5000:]  # it did run the operations


async def test_a_multipart_part_whose_headers_do_not_parse_is_a_bad_request(server: RunningServer) -> None:
    """Found by the fuzzer: such an upload was a 500 (aiohttp's InvalidHeader escaped the handler)."""
    boundary = "a222103b9b30b1f9"
    body = f"--{boundary}\r\n[]--{boundary}--\r\n".encode()
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{server.url}/v1/files", data=body, headers={
                "Authorization": f"Bearer {server.api_key}",
                "Content-Type": f"multipart/form-data; boundary={boundary}"}) as r:
            assert r.status == 400 and (await r.json())["error"]["code"] == "bad_multipart"
