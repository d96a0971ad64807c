"""GitLab webhook deliveries as readable posts: push and tag push, merge request, issue and release hooks.

`gitlab_post(event, payload)` is the Markdown to post, or None for what is not worth a post (an update, an
approval), which is answered 200 and dropped. `event` is the X-Gitlab-Event header ("Push Hook", …).
"""

from __future__ import annotations

from typing import Any

from integrations.git_text import Change, branch_of, change_post, commit_lines, label, link, obj, objs, s

MR_ACTIONS = {"open": "opened", "close": "closed", "reopen": "reopened", "merge": "merged"}
ISSUE_ACTIONS = {"open": "opened", "close": "closed", "reopen": "reopened"}


def gitlab_post(event: str, payload: dict[str, Any]) -> str | None:
    repo = link(s(payload, "project", "path_with_namespace"), s(payload, "project", "web_url"))
    who = f"**{label(s(payload, 'user', 'username') or s(payload, 'user_username') or 'someone')}**"
    attrs = obj(payload, "object_attributes")
    if event in ("Push Hook", "Tag Push Hook"):
        return _push(payload, repo, who)
    if event == "Merge Request Hook" and s(attrs, "action") in MR_ACTIONS:
        action = MR_ACTIONS[s(attrs, "action")]
        title = link(f"!{attrs.get('iid', '?')} {s(attrs, 'title')}", s(attrs, "url"))
        return change_post(Change(who, action, "merge request", title, repo, s(attrs, "description"),
                                  s(attrs, "source_branch"), s(attrs, "target_branch")))
    if event == "Issue Hook" and s(attrs, "action") in ISSUE_ACTIONS:
        action = ISSUE_ACTIONS[s(attrs, "action")]
        title = link(f"#{attrs.get('iid', '?')} {s(attrs, 'title')}", s(attrs, "url"))
        return change_post(Change(who, action, "issue", title, repo, s(attrs, "description")))
    if event == "Release Hook" and s(payload, "action") == "create":
        name = s(payload, "name") or s(payload, "tag")
        return f"Release {link(name, s(payload, 'url'))} published in {repo}"
    return None


def _push(payload: dict[str, Any], repo: str, who: str) -> str | None:
    kind, name = branch_of(s(payload, "ref"))
    web = s(payload, "project", "web_url")
    ref_link = link(name, f"{web}/-/tree/{name}")
    if s(payload, "after").strip("0") == "":
        return f"{who} deleted {kind} `{label(name)}` of {repo}"
    if kind == "tag":
        return f"{who} pushed tag {ref_link} to {repo}"
    commits = [{"id": s(c, "id"), "url": s(c, "url"), "message": s(c, "message"), "author": s(c, "author", "name")}
               for c in objs(payload, "commits")]
    total = payload.get("total_commits_count")
    total = total if isinstance(total, int) and total >= len(commits) else len(commits)
    if not commits:
        return None
    count = f"{total} commit{'s' if total != 1 else ''}"
    compare = f"{web}/-/compare/{s(payload, 'before')[:12]}...{s(payload, 'after')[:12]}"
    return "\n".join([f"{who} pushed {link(count, compare)} to {ref_link} of {repo}", *commit_lines(commits, total)])
