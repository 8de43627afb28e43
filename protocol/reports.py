"""Structured answers models give (DESIGN §7): their JSON schemas come from these models."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ExplorationReport(BaseModel):
    """What an explorer found in the workspace."""

    summary: str = Field(description="two or three sentences on what the workspace holds")
    files: list[str] = Field(default_factory=list, description="the files that matter")
    languages: list[str] = Field(default_factory=list)
    entry_points: list[str] = Field(default_factory=list, description="scripts, CLIs, mains")
    test_setup: str = Field(default="", description="how tests are run, or that there are none")
    conventions: list[str] = Field(default_factory=list, description="style and layout habits")
