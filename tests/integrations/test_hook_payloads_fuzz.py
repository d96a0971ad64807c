"""Whatever JSON a sender posts, the renderers answer a post, None, or a typed 400: never a crash (a 500).
GitHub and GitLab payloads are checked only after the signature, but a signed payload may still be odd."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given, settings
from hypothesis import strategies as st

from common.errors import ConveneError
from integrations.github import github_post
from integrations.gitlab import gitlab_post
from integrations.slack_message import parse_body, read_message

KEY_NAMES = (["text", "username", "attachments", "blocks", "type", "fields", "title", "value", "pretext",
                        "title_link", "elements", "image_url", "alt_text", "footer", "fallback", "author_name",
                        "author_link", "action", "commits", "ref", "pull_request", "issue", "release", "sender",
                        "repository", "object_attributes", "project", "user", "id", "url", "message", "author",
                        "number", "merged", "deleted", "created", "name", "tag_name", "after", "before"])
KEYS = st.sampled_from(KEY_NAMES)
# Real values too, so the fuzzer reaches the branches past "which action is this".
WORDS = st.sampled_from(["opened", "closed", "reopened", "published", "open", "close", "merge", "create", "section",
                         "header", "context", "divider", "image", "mrkdwn", "refs/heads/main", "refs/tags/v1",
                         "https://x.example/a", "0000000000000000000000000000000000000000"])
JSON: Any = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20) | WORDS,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(KEYS, children, max_size=6)
    | st.fixed_dictionaries({}, optional={k: children for k in KEY_NAMES[:24]}),
    max_leaves=30)


@settings(max_examples=150, deadline=None)
@given(st.fixed_dictionaries({}, optional={k: JSON for k in ("text", "username", "attachments", "blocks")}))
@example({"blocks": [{"type": "section", "fields": 5}, {"type": "context", "elements": 7}]})
@example({"attachments": [{"fields": 3, "title": ["x"]}]})
def test_slack_messages_render_or_refuse(payload: dict[str, Any]) -> None:
    try:
        message = read_message(payload)
    except ConveneError as err:
        assert err.code in ("invalid_payload", "no_text")
    else:
        assert message.text.strip()


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200), st.sampled_from(["application/json", "application/x-www-form-urlencoded", ""]))
def test_any_body_parses_or_is_invalid_payload(body: bytes, content_type: str) -> None:
    try:
        parse_body(body, content_type)
    except ConveneError as err:
        assert err.code == "invalid_payload"


@settings(max_examples=150, deadline=None)
@given(st.sampled_from(["push", "pull_request", "issues", "release", "ping"]),
       st.sampled_from(["Push Hook", "Tag Push Hook", "Merge Request Hook", "Issue Hook", "Release Hook"]),
       st.fixed_dictionaries({}, optional={k: JSON for k in KEY_NAMES}))
@example("pull_request", "Merge Request Hook", {"action": "opened", "pull_request": [1], "object_attributes": 2})
@example("push", "Push Hook", {"ref": "refs/heads/main", "commits": 5, "after": "1"})
def test_git_payloads_of_any_shape_render_or_are_dropped(gh_event: str, gl_event: str, payload: dict[str, Any]) -> None:
    for text in (github_post(gh_event, payload), gitlab_post(gl_event, payload)):
        assert text is None or isinstance(text, str)
