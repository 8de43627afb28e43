"""Safety rails for a model's command lines (a worker's `run_command`, a DoD `command`):
refuse destructive commands with a reason the model can act on. Pure functions: they decide,
`sandbox.py` runs. They are advice, not the wall: the sandbox is the wall, and stops what a
spelling slips past them (`x=rm; $x -rf /`, `python3 -c "shutil.rmtree(...)"`).

A command line is split into simple commands at `;`, `&&`, `||`, `|`, `&`, newlines and
parentheses; shell keywords (`if`, `then`, `{`, `!` ...), variable assignments and
redirections are set aside (redirection targets are judged on their own); every dangerous
command name anywhere in a simple command is judged with the words after it, so wrappers with
options (`timeout -s KILL 5 rm`, `xargs -I{} rm`, `sudo -u x`) do not hide it; text inside
`$(...)`, backquotes, `<(...)`, `sh -c '...'` and `eval` is judged too.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from protocol.shellwords import KEYWORDS, flags, operands, simple_commands, without_redirections

_SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "fish", "csh", "tcsh"}
_INTERPRETERS = _SHELLS | {"python", "python3", "perl", "ruby", "node", "php", "lua"}
_POWER = {"shutdown", "reboot", "halt", "poweroff"}
_SAFE_TARGETS = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/tmp/", "/dev/fd/")
_DISKS = re.compile(r"^/dev/(sd|nvme|vd|hd|xvd|mmcblk|disk|dm-|md|loop)")
_FORK_BOMB = re.compile(r"(\w+|:)\s*\(\)\s*\{[^}]*\1\s*\|\s*\1\s*&[^}]*\}")
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)|`([^`]*)`|<\(([^()]*)\)")
_RUN_SUBSTITUTION = re.compile(r"\b(?:(?:ba|z|da|k)?sh|python3?|perl|ruby|node)\s+<\(")
_PIPE_INTO_SHELL = (
    "piping text into a shell or interpreter runs it unreviewed: write it to a "
    "file, read it, then run the file"
)
_HIDDEN_COMMAND = (
    "run a command by its name, not through a variable or a substitution: what it would run "
    "cannot be checked"
)
_GIT_OPTIONS_WITH_VALUE = {"-C", "-c", "--git-dir", "--work-tree", "--namespace"}


class Rails:
    """Judges commands for one workspace."""

    def __init__(self, workspace: Path) -> None:
        self.workspace = workspace.resolve()

    # --- where a path points -------------------------------------------------------------

    def _real(self, target: str) -> Path:
        path = Path(target)
        return (path if path.is_absolute() else self.workspace / path).resolve()

    def _inside(self, target: str) -> bool:
        """Strictly inside the workspace (not the workspace itself)."""
        if target.startswith(("~", "$")) or any(c in target for c in "`{"):
            return False
        return self.workspace in self._real(target).parents

    def whole_or_outside(self, target: str) -> bool:
        """Whether a recursive operation on `target` would reach the workspace itself or
        anything outside it. Globs count by the directory they start in."""
        if target.startswith(("~", "$")) or any(c in target for c in "`{$"):
            return True
        glob = min((target.find(c) for c in "*?[" if c in target), default=-1)
        if glob >= 0:  # judged by the directory the glob starts in
            target = target[:glob].rsplit("/", 1)[0] if "/" in target[:glob] else "."
        return not self._inside(target)

    def _outside(self, target: str) -> bool:
        """A write target that is neither in the workspace nor a harmless device or /tmp."""
        if target.startswith(_SAFE_TARGETS):
            return False
        return not self._inside(target) and self._real(target) != self.workspace

    # --- judging -------------------------------------------------------------------------

    def refusal(self, command: str) -> str | None:
        """Why `command` is refused, or None when it may run."""
        if _FORK_BOMB.search(command):
            return "a fork bomb: it would exhaust the machine's processes"
        if _RUN_SUBSTITUTION.search(command):
            return _PIPE_INTO_SHELL
        for match in _SUBSTITUTION.finditer(command):
            inner = next(group for group in match.groups() if group is not None)
            if reason := self.refusal(inner):
                return reason
        for words, before in simple_commands(command):
            if reason := self._segment(words, before):
                return reason
        return None

    def _segment(self, words: list[str], before: str) -> str | None:
        words, targets = without_redirections(words)
        for target in targets:
            if _DISKS.match(target):
                return "writing to a disk device destroys its data"
            if target.startswith("~") or (target.startswith("/") and self._outside(target)):
                return f"writing to {target} is not allowed: work inside the workspace"
        while words and (
            words[0] in KEYWORDS or ("=" in words[0] and not words[0].startswith("-"))
        ):
            words = words[1:]
        if not words:
            return None
        if words[0].startswith(("$", "`")):
            return _HIDDEN_COMMAND
        piped = before == "|" and os.path.basename(words[0]) in _INTERPRETERS
        if piped and not operands(words[1:]):
            return _PIPE_INTO_SHELL
        for index, word in enumerate(words):
            base = os.path.basename(word)
            judged = "mkfs" if base.startswith("mkfs") else base
            if judged in _JUDGED and (reason := self._command(judged, words[index + 1 :])):
                return reason
        return None

    def _command(self, name: str, args: list[str]) -> str | None:
        # Text that a shell will run is judged as a command line of its own.
        if name in _SHELLS and "-c" in flags(args):
            return self.refusal(next((w for w in args if not w.startswith("-")), ""))
        if name == "eval":
            return self.refusal(" ".join(args))
        call = Call(name, args, flags(args), operands(args))
        if name == "git":
            call = _git_call(args)
            rules = GIT_RULES
        else:
            rules = RULES
        for rule in rules:
            if call.name in rule.names and (target := rule.refuses(self, call)) is not None:
                return rule.reason.format(name=call.name, target=target)
        return None

    def inside_or_root(self, target: str) -> bool:
        return self._inside(target) or (
            not target.startswith(("~", "$", "-")) and self._real(target) == self.workspace
        )

    def written_outside(self, call: Call) -> str | None:
        """The first path a copying or editing command would change outside the workspace."""
        if call.name == "mv":
            touched = call.operands
        elif call.name in ("cp", "install", "ln", "rsync"):
            touched = call.operands[-1:]  # the destination
        elif call.name == "sed":
            touched = call.operands[1:] if "-i" in call.flags else []
        else:  # tee, truncate
            touched = call.operands
        return next((t for t in touched if t == "/" or self._outside(t)), None)

    def find_deletes_too_much(self, args: list[str]) -> bool:
        """`find -delete` (or `-exec rm`) from outside the workspace, or over all of it
        without a filter."""
        if "-delete" not in args and not ("-exec" in args and "rm" in args):
            return False
        first_test = next((i for i, w in enumerate(args) if w.startswith("-")), len(args))
        roots = args[:first_test] or ["."]
        patterns = [
            args[i + 1]
            for i, w in enumerate(args[:-1])
            if w in ("-name", "-iname", "-path", "-ipath", "-regex")
        ]
        filtered = any(p.strip("*.") for p in patterns)  # "*" alone filters nothing
        return any(
            not self._inside(root) and not (self.inside_or_root(root) and filtered)
            for root in roots
        )


# --- the rules, as data: which command, when it is refused, and what the model is told ------


@dataclass(frozen=True)
class Call:
    """A dangerous command name found in a simple command, with the words after it (for git:
    its subcommand and that subcommand's words)."""

    name: str
    args: list[str]
    flags: set[str]
    operands: list[str]


@dataclass(frozen=True)
class Rule:
    names: frozenset[str]
    # None when the call may run; else the offending target ("" when there is none to name).
    refuses: Callable[[Rails, Call], str | None]
    reason: str  # may name {name} and {target}


def _always(rails: Rails, call: Call) -> str | None:
    return ""


def _when(test: Callable[[Rails, Call], bool]) -> Callable[[Rails, Call], str | None]:
    return lambda rails, call: "" if test(rails, call) else None


def _recursive(call: Call, flags: frozenset[str]) -> bool:
    return bool(call.flags & flags)


RULES: tuple[Rule, ...] = (
    Rule(
        frozenset({"sudo", "doas", "su"}),
        _always,
        "no sudo: commands run as the agent, inside the workspace",
    ),
    Rule(
        frozenset({"cd", "pushd"}),
        _when(lambda r, c: not c.operands or not r.inside_or_root(c.operands[0])),
        "changing directory outside the workspace is not allowed: commands run in the "
        "workspace; use paths inside it",
    ),
    Rule(
        frozenset({"rm"}),
        _when(
            lambda r, c: (
                _recursive(c, frozenset({"-r", "-R", "--recursive"}))
                and any(r.whole_or_outside(t) for t in c.operands or ["."])
            )
        ),
        "recursive delete of the workspace or of something outside it: delete only specific "
        "paths inside the workspace, by name",
    ),
    Rule(
        frozenset({"find"}),
        _when(lambda r, c: r.find_deletes_too_much(c.args)),
        "find -delete outside the workspace, or over all of it: filter with -name or -path, "
        "inside the workspace",
    ),
    Rule(
        frozenset({"fdisk", "parted", "wipefs", "mkswap", "mkfs"}),
        _always,
        "formatting or partitioning disks is not allowed",
    ),
    Rule(
        frozenset({"dd"}),
        _when(lambda r, c: any(a.startswith("of=/dev/") for a in c.args)),
        "dd onto a device destroys its data",
    ),
    Rule(
        frozenset({"shred"}),
        _when(lambda r, c: any(a.startswith("/dev/") for a in c.args)),
        "shredding a device destroys its data",
    ),
    Rule(
        frozenset({"chmod", "chown", "chgrp"}),
        _when(
            lambda r, c: (
                _recursive(c, frozenset({"-R", "--recursive"}))
                and any(r.whole_or_outside(t) for t in c.operands[1:])
            )
        ),
        "recursive {name} of the workspace or outside it is not allowed",
    ),
    Rule(
        frozenset(_POWER),
        _always,
        "shutting down or rebooting the machine is not allowed",
    ),
    Rule(
        frozenset({"init"}),
        _when(lambda r, c: c.operands[:1] in (["0"], ["6"])),
        "shutting down or rebooting the machine is not allowed",
    ),
    Rule(
        frozenset({"systemctl"}),
        _when(lambda r, c: bool(set(c.args) & {"poweroff", "reboot", "halt", "kexec"})),
        "shutting down or rebooting the machine is not allowed",
    ),
    Rule(
        frozenset({"kill", "pkill", "killall"}),
        _when(lambda r, c: "-1" in c.args or "1" in c.operands),
        "killing every process (or init) is not allowed",
    ),
    Rule(
        frozenset({"mv", "cp", "install", "ln", "rsync", "tee", "truncate", "sed"}),
        lambda r, c: r.written_outside(c),
        "{name} would change {target}, outside the workspace: work inside it",
    ),
    Rule(
        frozenset({"crontab"}),
        _when(lambda r, c: "-r" in c.flags),
        "removing the user's crontab is not allowed",
    ),
)

_FORCED = frozenset({"-f", "--force", "--force-with-lease", "--mirror", "--delete"})
GIT_RULES: tuple[Rule, ...] = (
    Rule(
        frozenset({"push"}),
        _when(lambda r, c: bool(c.flags & _FORCED) or any(a.startswith("+") for a in c.args)),
        "force-pushing rewrites others' history: never force-push",
    ),
    Rule(
        frozenset({"reset"}),
        _when(lambda r, c: "--hard" in c.args),
        "git reset --hard throws away the user's work: make a new commit or use git stash instead",
    ),
    Rule(
        frozenset({"clean"}),
        _when(lambda r, c: bool(c.flags & {"-f", "--force"})),
        "git clean -f deletes untracked files the user may need",
    ),
    Rule(
        frozenset({"checkout", "restore"}),
        _when(lambda r, c: "." in c.args and "--staged" not in c.args),
        "discarding every change in the working tree is not allowed",
    ),
    Rule(
        frozenset({"branch"}),
        _when(lambda r, c: "-D" in c.flags),
        "force-deleting branches is not allowed",
    ),
    Rule(
        frozenset({"config"}),
        _when(lambda r, c: any(k in " ".join(c.args) for k in ("hooksPath", "fsmonitor"))),
        "setting git hooks or fsmonitor runs code outside the sandbox: not allowed",
    ),
)

# Every name a rule judges, and the ones whose words are judged as a command line of their own.
_JUDGED = frozenset({"git", "eval", *_SHELLS, *(n for rule in RULES for n in rule.names)})


def _git_call(args: list[str]) -> Call:
    """git's own options (some with a value) skipped: the subcommand and its words."""
    rest = list(args)
    while rest and rest[0].startswith("-"):
        option = rest.pop(0)
        if option in _GIT_OPTIONS_WITH_VALUE and rest:
            rest.pop(0)
    sub, sub_args = (rest[0], rest[1:]) if rest else ("", [])
    return Call(sub, sub_args, flags(sub_args), operands(sub_args))
