"""`memory.json`: what each iteration verified, what failed, and what the RCA found, carried
into later prompts so the team does not repeat itself."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field

from protocol import atomic_write_json
from protocol.llm.budget import truncate_head_tail


class IterationRecord(BaseModel):
    iteration: int
    dod: dict[str, bool] = Field(default_factory=dict)
    failures: str = ""
    root_cause: str = ""
    edits: list[str] = Field(default_factory=list)
    fingerprint: str = ""


class Memory(BaseModel):
    iterations: list[IterationRecord] = Field(default_factory=list)
    # What the user told the coordinator (`team tell coordinator`), oldest first: in every
    # later planning and RCA prompt.
    guidance: list[str] = Field(default_factory=list)

    @classmethod
    def load(cls, path: Path) -> Memory:
        try:
            return cls.model_validate_json(path.read_bytes())
        except (FileNotFoundError, ValueError):
            return cls()

    def save(self, path: Path) -> None:
        atomic_write_json(path, self)

    def record(self, entry: IterationRecord) -> None:
        self.iterations = [i for i in self.iterations if i.iteration != entry.iteration]
        self.iterations.append(entry)
        self.iterations.sort(key=lambda i: i.iteration)

    def fingerprints(self) -> list[str]:
        return [i.fingerprint for i in self.iterations if i.fingerprint]

    def guidance_text(self) -> str:
        """The user's guidance as a prompt's paragraph ("" when there is none)."""
        if not self.guidance:
            return ""
        said = "\n".join(f"- {words}" for words in self.guidance[-10:])
        return f"The user's guidance (follow it):\n{said}"

    def render(self, max_tokens: int = 1_500) -> str:
        """A short history for a prompt: the user's guidance, then each iteration's DoD
        results and RCA, newest last."""
        guidance = self.guidance_text()
        if not self.iterations:
            return guidance
        lines = [guidance] if guidance else []
        lines.append("History of earlier iterations:")
        for entry in self.iterations:
            results = ", ".join(
                f"{k} {'pass' if v else 'FAIL'}" for k, v in sorted(entry.dod.items())
            )
            lines.append(f"- iteration {entry.iteration}: {results or 'not verified'}")
            if entry.root_cause:
                lines.append(f"  root cause found: {entry.root_cause}")
            for edit in entry.edits[:5]:
                lines.append(f"  edit tried: {edit}")
        return truncate_head_tail("\n".join(lines), max_tokens, head_share=0.3)
