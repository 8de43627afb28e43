"""How a coordinator's run ends short of its Definition of Done, as types."""

from __future__ import annotations


class TeamFailed(Exception):
    """The team stops without meeting its Definition of Done; the message says why."""


class BuildStalled(TeamFailed):
    """Tasks are left that can never start, and none is running: waiting would be forever."""


class TeamStopped(Exception):
    """`team kill` (a shutdown_request) or a signal asked the coordinator to stop."""


class TicksExhausted(Exception):
    """A bounded build (`max_ticks`, for tests) ran out of ticks before it finished."""
