"""Best-of-N test files (issue 13, the seed's v0.6.1 and v0.6.2): a tester's test file is asked
for as N candidates at different temperatures, each run with pytest against the current source
in a scratch copy of the workspace, in the sandbox; the first whose tests all pass wins at once
and the others stop. When none does, a second wave is asked with the first wave's failures in
its prompt. The best candidate is kept, and the report says which and why. candidates.py holds
the decisions; this module asks and runs."""

from __future__ import annotations

import shutil
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from queue import Queue

from agent_worker.assertions import assertion_check
from agent_worker.candidates import (
    Candidate,
    TestRun,
    best,
    error_digest,
    extract_file,
    only_the_code_fails,
    parse_junit,
    parse_unittest,
    temperatures,
)
from agent_worker.tools import UNLISTED_DIRS
from coordinator.verify import PYTEST
from protocol.config import Config, SamplingSettings
from protocol.environment import is_secret_path
from protocol.layout import Layout
from protocol.llm import ChatMessage, ModelClient, ModelError, pool
from protocol.llm.types import CallProgress
from protocol.sandbox import Sandbox
from protocol.workspace_files import read_text_inside

SAMPLE_REQUEST = """Write the whole of {path} now: pytest tests of the source above, importing
only the names it defines. Answer with the file's content in one ```python block, nothing
else."""
SECOND_WAVE_NOTE = """Earlier candidates for {path} failed with:
{errors}
Avoid these mistakes: import only names the source defines, call them as they are defined,
and assert what the task says the code must do."""
CURRENT_FILE = """{path} is now:
```python
{content}```"""
JUNIT = ".candidate-junit.xml"
DEFAULTS = SamplingSettings()
NO_PYTEST = "No module named pytest"


class Cancelled(Exception):
    """A candidate stopped because another one already won (or the agent is stopping)."""


@dataclass(frozen=True)
class Waves:
    """How many candidates each wave asks for, and at which temperatures (the defaults are
    `[sampling]`'s)."""

    first: int = DEFAULTS.test_candidates
    second: int = DEFAULTS.second_wave
    first_temperatures: tuple[float, ...] = tuple(DEFAULTS.first_temperatures)
    second_temperatures: tuple[float, ...] = tuple(DEFAULTS.second_temperatures)
    parallel: int = 1  # candidates asked at once: never more than the server serves
    timeout: float = DEFAULTS.test_timeout  # seconds for one candidate's test run

    @classmethod
    def of(cls, settings: SamplingSettings, parallel: int) -> Waves:
        return cls(settings.test_candidates, settings.second_wave,
                   tuple(settings.first_temperatures), tuple(settings.second_temperatures),
                   parallel, settings.test_timeout)  # fmt: skip


@dataclass
class Sampled:
    """What sampling one test file gave: every candidate, and the one kept (None: no answer
    held a file)."""

    path: str
    candidates: list[Candidate] = field(default_factory=list)
    kept: Candidate | None = None

    @property
    def requests(self) -> int:
        return len(self.candidates)

    def report(self) -> str:
        """One sentence for the pane, the trace and the task's summary."""
        asked = f"{self.requests} candidate{'s' if self.requests != 1 else ''}"
        if self.kept is None:
            return f"{self.path}: none of {asked} held a file"
        if self.kept.wins:
            return f"{self.path}: {self.kept.describe()}; kept at once, of {asked} asked"
        return f"{self.path}: no candidate's tests all pass; kept the best, {self.kept.describe()}"


@dataclass
class _Pending:
    """A candidate's test run, as other threads with the same candidate wait for it."""

    done: threading.Event = field(default_factory=threading.Event)
    run: TestRun | None = None  # None once done: it was stopped, so run it again


@dataclass
class TestSampler:
    __test__ = False  # not a test class, for pytest

    layout: Layout
    sandbox: Sandbox  # the team's policy: each candidate runs under it, in its scratch copy
    clients: Sequence[ModelClient]  # one per candidate asked at once
    waves: Waves = field(default_factory=Waves)
    agent: str = "tester"
    on_event: Callable[[str, str], None] = lambda kind, detail: None
    should_stop: Callable[[], bool] = lambda: False
    planned: frozenset[str] = frozenset()  # module names the plan builds (not all there yet)
    # By path and content: candidates alike are run once.
    _runs: dict[tuple[str, str], _Pending] = field(default_factory=dict)
    _runs_lock: threading.Lock = field(default_factory=threading.Lock)

    def sample(self, path: str, messages: Sequence[ChatMessage]) -> Sampled:
        """Sample `path`: the first wave, then (when no candidate won) the second, with the
        first wave's failures in its prompt."""
        sampled = Sampled(path)
        request = SAMPLE_REQUEST.format(path=path)
        current = read_text_inside(self.layout.workspace, path)
        if current:  # a fix of tests that failed verification: what they are now
            request = f"{CURRENT_FILE.format(path=path, content=current)}\n\n{request}"
        first = temperatures(self.waves.first, self.waves.first_temperatures)
        sampled.candidates += self._wave(1, first, path, [*messages, ChatMessage.user(request)], 0)
        if only_the_code_fails(sampled.candidates):
            self.on_event("info", f"{path}: every failure is the code's, not the tests': "
                                  "no second wave")  # fmt: skip
        elif not any(c.wins for c in sampled.candidates) and self.waves.second:
            errors = error_digest(sampled.candidates)
            note = SECOND_WAVE_NOTE.format(path=path, errors=errors)
            prompt = [*messages, ChatMessage.user(f"{request}\n\n{note}")]
            second = temperatures(self.waves.second, self.waves.second_temperatures)
            self.on_event("info", f"{path}: no candidate passes; a second wave of {len(second)}, "
                                  "told what failed")  # fmt: skip
            sampled.candidates += self._wave(2, second, path, prompt, len(sampled.candidates))
        sampled.kept = best(sampled.candidates)
        self.on_event("check" if sampled.kept and sampled.kept.wins else "info", sampled.report())
        return sampled

    def _wave(
        self,
        wave: int,
        temps: list[float],
        path: str,
        messages: list[ChatMessage],
        numbered: int,
    ) -> list[Candidate]:
        won = threading.Event()
        clients: Queue[ModelClient] = Queue()
        for client in self.clients[: max(1, self.waves.parallel)]:
            clients.put(client)

        def one(index: int, temperature: float) -> Candidate | None:
            if won.is_set() or self.should_stop():
                return None  # not started: another candidate already won
            client = clients.get()
            try:
                candidate = self._candidate(client, won, wave, numbered + index + 1,
                                            temperature, path, messages)  # fmt: skip
            finally:
                clients.put(client)
            if candidate is not None and candidate.wins:
                won.set()
            return candidate

        workers = min(len(temps), max(1, self.waves.parallel), len(self.clients))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="candidate") as pool:
            futures = [pool.submit(one, i, t) for i, t in enumerate(temps)]
            done = [future.result() for future in futures]
        return [c for c in done if c is not None]

    def _candidate(
        self,
        client: ModelClient,
        won: threading.Event,
        wave: int,
        number: int,
        temperature: float,
        path: str,
        messages: list[ChatMessage],
    ) -> Candidate | None:
        stop = lambda: won.is_set() or self.should_stop()  # noqa: E731
        watching = client.on_progress

        def on_progress(progress: CallProgress) -> None:
            if stop() and progress.phase != "end":
                raise Cancelled
            if watching is not None:
                watching(progress)

        client.on_progress = on_progress
        try:
            answer = client.chat(messages, temperature=temperature, seed=number)
        except Cancelled:
            return None
        except ModelError as exc:  # one candidate lost is not the task lost
            self.on_event("fail", f"{path}: candidate {number}: {exc}")
            return Candidate(number, wave, temperature, None, model=client.configured.model)
        finally:
            client.on_progress = watching
        content = extract_file(answer.text, answer.tool_calls, path)
        model = answer.model or client.configured.model
        if content is None:
            self.on_event("info", f"{path}: candidate {number} (t={temperature:g}): no file")
            return Candidate(number, wave, temperature, None, model=model)
        if stop():
            return None
        weak = assertion_check(path, content)
        run = self._run(path, content, number, stop)
        candidate = Candidate(number, wave, temperature, content, run,
                              weak.message if weak else "", model)  # fmt: skip
        self.on_event("check" if candidate.wins else "info", candidate.describe())
        return candidate

    # --- running a candidate's tests -------------------------------------------------------

    def _run(self, path: str, content: str, number: int, stop: Callable[[], bool]) -> TestRun:
        """The candidate's tests run; a candidate alike to one run before (or running now, in
        another thread) has its result."""
        key = (path, content)
        with self._runs_lock:
            pending = self._runs.get(key)
            mine = pending is None
            if pending is None:
                pending = self._runs[key] = _Pending()
        if not mine:
            pending.done.wait()
            if pending.run is not None:
                return pending.run
        run = self._run_in_scratch(path, content, number, stop)
        if mine:
            if not stop():  # a run stopped half-way says nothing of the candidate
                pending.run = run
            pending.done.set()
        return run

    def _run_in_scratch(
        self, path: str, content: str, number: int, stop: Callable[[], bool]
    ) -> TestRun:
        scratch = self.layout.root / "scratch" / f"{self.agent}-{number}"
        try:
            copy_workspace(self.layout.workspace, scratch)
            target = scratch / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(content, encoding="utf-8")
            return self._pytest(scratch, path, stop)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def _pytest(self, scratch: Path, path: str, stop: Callable[[], bool]) -> TestRun:
        python: str = sys.executable
        readable: tuple[str, ...] = ()
        venv = self.layout.workspace / ".venv"
        if (venv / "bin" / "python").exists():  # what verification installed the code into
            python, readable = str(venv / "bin" / "python"), (str(venv),)
        policy = Sandbox(
            scratch,
            confined=self.sandbox.confined,
            hidden=(*self.sandbox.hidden, str(self.layout.workspace)),
            readable=readable,
        )
        env = {"PYTHONPATH": str(scratch)}
        argv = [python, *PYTEST, f"--junitxml={scratch / JUNIT}", path]  # as verification runs
        done = policy.run(argv, timeout=self.waves.timeout, env=env, should_stop=stop)
        if NO_PYTEST in done.output:  # no pytest where the code runs: unittest, as verification
            module = PurePosixPath(path).with_suffix("").as_posix().replace("/", ".")
            done = policy.run([python, "-m", "unittest", "-v", module],
                              timeout=self.waves.timeout, env=env, should_stop=stop)  # fmt: skip
            return parse_unittest(done.output, path, self.planned)
        junit = scratch / JUNIT
        if not junit.is_file():
            return TestRun(output=done.output)
        report = junit.read_text(encoding="utf-8", errors="replace")
        return parse_junit(report, path, done.output, self.planned)


def server_capacity(config: Config, client: ModelClient) -> int:
    """How many requests the role's servers answer at once: the capacities of its endpoints
    in the pool, else the configured slots of its provider, else what the server says
    (llama.cpp's /props), else 1 (never more than they serve: beyond, requests only wait)."""
    pooled = pool.capacity(client.places)
    if pooled:
        return pooled
    configured = config.providers.slots.get(client.configured.provider)
    if configured:
        return max(1, configured)
    return client.server_info().slots or 1


def copy_workspace(workspace: Path, scratch: Path) -> None:
    """The workspace's files as they are now, without the team's state, environments,
    caches or secret-looking files."""
    shutil.rmtree(scratch, ignore_errors=True)

    def ignored(folder: str, names: list[str]) -> set[str]:
        return {n for n in names if n in UNLISTED_DIRS or is_secret_path(n)}

    shutil.copytree(workspace, scratch, ignore=ignored, symlinks=True)
