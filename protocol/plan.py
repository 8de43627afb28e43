"""The plan a planner model gives (DESIGN §7): modules with their files and dependencies, and
the Definition-of-Done criteria. The JSON schema the model is asked for is generated from here."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, Field


class VerificationType(StrEnum):
    TEST = "test"
    COMMAND = "command"
    FILE_EXISTS = "file_exists"
    IMPORT = "import"


class PlannedFile(BaseModel):
    path: str = Field(description="path relative to the workspace root")
    purpose: str = Field(default="", description="what the file holds")


class Module(BaseModel):
    name: str = Field(description="a short identifier, e.g. models, storage, cli, tests")
    description: str = ""
    files: list[PlannedFile]
    depends_on: list[str] = Field(default_factory=list, description="names of other modules")
    role: str = Field(default="builder", description="builder, or tester for test modules")


class DodCriterion(BaseModel):
    id: str = Field(description="a short id, e.g. D1")
    description: str
    verification_type: VerificationType
    target_file: str = Field(
        default="", description="the test file, the module path, the file, or the command"
    )


class Plan(BaseModel):
    summary: str = ""
    modules: list[Module]
    dod: list[DodCriterion] = Field(default_factory=list)
