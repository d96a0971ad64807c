"""Typed errors of scheduled posts (codes a client sees in answers and in a run's stored `error_code`)."""

from __future__ import annotations

from common.errors import Forbidden, NotFound


class ScheduledPostNotFound(NotFound):
    """No such scheduled post, or one of another user (non-admins are not told it exists)."""

    code = "scheduled_post_not_found"


class UserDeactivated(Forbidden):
    """The author's account was deactivated before the post fell due."""

    code = "user_deactivated"


class AuthorGone(NotFound):
    """The author's user no longer exists."""

    code = "user_not_found"


class TooManyScheduled(Forbidden):
    """The author has as many scheduled posts waiting as one user may have."""

    code = "too_many_scheduled_posts"
