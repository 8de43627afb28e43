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


class RcaEdit(BaseModel):
    """One concrete change that fixes the root cause."""

    file: str = Field(description="path of the file to change, relative to the workspace")
    action: str = Field(description="create, edit, or delete")
    details: str = Field(description="exactly what to change, specific enough to do blindly")


class RcaReport(BaseModel):
    """A 5 Whys root-cause analysis of a failed verification, on the evidence given."""

    whys: list[str] = Field(description="why it failed, asked five times, each on the last answer")
    root_cause: str
    concrete_edits: list[RcaEdit] = Field(description="the changes that fix the root cause")
