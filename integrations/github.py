"""GitHub webhook deliveries as readable posts: push, pull_request, issues and release.

`github_post(event, payload)` is the Markdown to post, or None for an event (or action) not worth a post (ping,
a label change, a pull request's new commits), which is answered 200 and dropped.
"""

from __future__ import annotations

from typing import Any

from integrations.git_text import Change, branch_of, change_post, commit_lines, label, link, obj, objs, s

PR_ACTIONS = {"opened", "closed", "reopened", "ready_for_review"}
ISSUE_ACTIONS = {"opened", "closed", "reopened"}


def github_post(event: str, payload: dict[str, Any]) -> str | None:
    repo = link(s(payload, "repository", "full_name"), s(payload, "repository", "html_url"))
    who = f"**{label(s(payload, 'sender', 'login') or 'someone')}**"
    if event == "push":
        return _push(payload, repo, who)
    if event == "pull_request" and s(payload, "action") in PR_ACTIONS:
        pr = obj(payload, "pull_request")
        action = "merged" if s(payload, "action") == "closed" and pr.get("merged") else s(payload, "action")
        title = link(f"#{pr.get('number', '?')} {s(pr, 'title')}", s(pr, "html_url"))
        return change_post(Change(who, action.replace("_", " "), "pull request", title, repo, s(pr, "body"),
                                  s(pr, "head", "ref"), s(pr, "base", "ref")))
    if event == "issues" and s(payload, "action") in ISSUE_ACTIONS:
        issue = obj(payload, "issue")
        title = link(f"#{issue.get('number', '?')} {s(issue, 'title')}", s(issue, "html_url"))
        return change_post(Change(who, s(payload, "action"), "issue", title, repo, s(issue, "body")))
    if event == "release" and s(payload, "action") == "published":
        release = obj(payload, "release")
        name = s(release, "name") or s(release, "tag_name")
        kind = "pre-release" if release.get("prerelease") else "release"
        return f"{who} published {kind} {link(name, s(release, 'html_url'))} of {repo}"
    return None


def _push(payload: dict[str, Any], repo: str, who: str) -> str | None:
    kind, name = branch_of(s(payload, "ref"))
    ref_link = link(name, f"{s(payload, 'repository', 'html_url')}/tree/{name}")
    if payload.get("deleted"):
        return f"{who} deleted {kind} `{label(name)}` of {repo}"
    if kind == "tag":
        return f"{who} pushed tag {ref_link} to {repo}"
    commits = [{"id": s(c, "id"), "url": s(c, "url"), "message": s(c, "message"),
                "author": s(c, "author", "username") or s(c, "author", "name")}
               for c in objs(payload, "commits")]
    if not commits:
        return f"{who} created branch {ref_link} in {repo}" if payload.get("created") else None
    count = f"{len(commits)} commit{'s' if len(commits) != 1 else ''}"
    head = f"{who} pushed {link(count, s(payload, 'compare'))} to {ref_link} of {repo}"
    return "\n".join([head, *commit_lines(commits, len(commits))])
