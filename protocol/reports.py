"""Structured answers models give (DESIGN §7): their JSON schemas come from these models.

As for the plan (protocol/plan.py), the schemas constrain: every field required, no other
keys, no empty strings where one would say nothing, no judgement that rambles on (`maxLength`),
at least one edit in a root-cause analysis, at most five whys.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

NonEmpty = Annotated[str, Field(min_length=1)]
Said = Annotated[str, Field(min_length=1, max_length=500)]
EDIT_FILE_MAX = 200  # the longest path an RCA edit may name


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ExplorationReport(_Strict):
    """What is in the workspace. The facts (files, languages, entry points, how tests run)
    come from code (coordinator/survey.py); an explorer model adds the judgement: the summary
    and the conventions."""

    summary: Annotated[str, Field(min_length=1, max_length=1000)] = Field(
        description="two or three sentences on what the workspace holds"
    )
    files: list[NonEmpty] = Field(description="the files that matter")
    languages: list[Annotated[str, Field(min_length=1, max_length=50)]]
    entry_points: list[NonEmpty] = Field(description="scripts, CLIs, mains")
    test_setup: Said = Field(description="how tests are run, or that there are none")
    conventions: list[Said] = Field(description="style and layout habits")


class RcaEdit(_Strict):
    """One concrete change that fixes the root cause."""

    file: Annotated[str, Field(min_length=1, max_length=EDIT_FILE_MAX)] = Field(
        description="path of the file to change, relative to the workspace"
    )
    action: Literal["create", "edit", "delete"]
    details: Annotated[str, Field(min_length=1, max_length=600)] = Field(
        description="exactly what to change, specific enough to do blindly"
    )


class RcaReport(_Strict):
    """A 5 Whys root-cause analysis of a failed verification, on the evidence given."""

    whys: list[Said] = Field(
        min_length=1,
        max_length=5,
        description="why it failed, asked five times, each on the last answer",
    )
    root_cause: Said
    concrete_edits: list[RcaEdit] = Field(
        min_length=1, max_length=10, description="the changes that fix the root cause"
    )
