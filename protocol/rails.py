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
import shlex
from collections.abc import Iterator
from pathlib import Path

_SEPARATORS = {";", "&&", "||", "|", "&", "|&", ";;", "(", ")", "\n"}
_REDIRECTS = {">", ">>", ">|", "&>", "&>>", "<", "<<", "<<<", ">&", "<&", "<>"}
_KEYWORDS = {
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "do",
    "done",
    "while",
    "until",
    "for",
    "in",
    "case",
    "esac",
    "{",
    "}",
    "!",
    "function",
    "select",
    "time",
    "coproc",
}
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
_GIT_OPTIONS_WITH_VALUE = {"-C", "-c", "--git-dir", "--work-tree", "--namespace"}
_JUDGED = {
    "rm",
    "find",
    "dd",
    "shred",
    "chmod",
    "chown",
    "chgrp",
    "kill",
    "pkill",
    "killall",
    "git",
    "tee",
    "cp",
    "mv",
    "install",
    "ln",
    "rsync",
    "sed",
    "truncate",
    "crontab",
    "sudo",
    "doas",
    "su",
    "eval",
    "systemctl",
    "init",
    "cd",
    "pushd",
    "fdisk",
    "parted",
    "wipefs",
    "mkswap",
    *_POWER,
    *_SHELLS,
}


def _segments(command: str) -> Iterator[tuple[list[str], str]]:
    """(words, the separator before them) for each simple command; redirections stay in."""
    lexer = shlex.shlex(command.replace("\n", " ; "), posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: judge the raw words
        tokens = command.split()
    words: list[str] = []
    before = ""
    for token in tokens:
        if token in _SEPARATORS or (set(token) <= set(";&|()") and token not in _REDIRECTS):
            if words:
                yield words, before
            words, before = [], token
        else:
            words.append(token)
    if words:
        yield words, before


def _flags(words: list[str]) -> set[str]:
    flags: set[str] = set()
    for word in words:
        if word.startswith("--"):
            flags.add(word)
        elif word.startswith("-") and len(word) > 1:
            flags.update(f"-{letter}" for letter in word[1:])
    return flags


def _operands(words: list[str]) -> list[str]:
    return [w for w in words if not w.startswith("-")]


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

    def _whole_or_outside(self, target: str) -> bool:
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
        for words, before in _segments(command):
            if reason := self._segment(words, before):
                return reason
        return None

    def _segment(self, words: list[str], before: str) -> str | None:
        words, targets = self._without_redirections(words)
        for target in targets:
            if _DISKS.match(target):
                return "writing to a disk device destroys its data"
            if target.startswith("~") or (target.startswith("/") and self._outside(target)):
                return f"writing to {target} is not allowed: work inside the workspace"
        while words and (
            words[0] in _KEYWORDS or ("=" in words[0] and not words[0].startswith("-"))
        ):
            words = words[1:]
        if not words:
            return None
        name = os.path.basename(words[0])
        if before == "|" and name in _INTERPRETERS and not _operands(words[1:]):
            return (
                "piping text into a shell or interpreter runs it unreviewed: write it to a "
                "file, read it, then run the file"
            )
        for index, word in enumerate(words):
            base = os.path.basename(word)
            judged = base in _JUDGED or base.startswith("mkfs")
            if judged and (reason := self._command(base, words[index + 1 :])):
                return reason
        return None

    @staticmethod
    def _without_redirections(words: list[str]) -> tuple[list[str], list[str]]:
        kept: list[str] = []
        targets: list[str] = []
        skip_next = False
        for i, word in enumerate(words):
            if skip_next:
                skip_next = False
                continue
            if word in _REDIRECTS:
                if word.startswith((">", "&")) and i + 1 < len(words):
                    targets.append(words[i + 1])
                skip_next = True
                if kept and kept[-1].isdigit():  # the descriptor of `2>` or `exec 3>`
                    kept.pop()
                continue
            kept.append(word)
        return kept, targets

    def _command(self, name: str, args: list[str]) -> str | None:
        flags = _flags(args)
        operands = _operands(args)
        if name in ("sudo", "doas", "su"):
            return "no sudo: commands run as the agent, inside the workspace"
        if name in _SHELLS and "-c" in flags:
            return self.refusal(next((w for w in args if not w.startswith("-")), ""))
        if name == "eval":
            return self.refusal(" ".join(args))
        if name in ("cd", "pushd") and (not operands or not self._inside_or_root(operands[0])):
            return (
                "changing directory outside the workspace is not allowed: commands run in "
                "the workspace; use paths inside it"
            )
        recursive_rm = name == "rm" and bool(flags & {"-r", "-R", "--recursive"})
        if recursive_rm and any(self._whole_or_outside(t) for t in operands or ["."]):
            return (
                "recursive delete of the workspace or of something outside it: delete "
                "only specific paths inside the workspace, by name"
            )
        if name == "find" and ("-delete" in args or ("-exec" in args and "rm" in args)):
            return self._find(args)
        if name.startswith("mkfs") or name in ("fdisk", "parted", "wipefs", "mkswap"):
            return "formatting or partitioning disks is not allowed"
        if name == "dd" and any(a.startswith("of=/dev/") for a in args):
            return "dd onto a device destroys its data"
        if name == "shred" and any(a.startswith("/dev/") for a in args):
            return "shredding a device destroys its data"
        recursive = bool(flags & {"-R", "--recursive"})
        if (
            name in ("chmod", "chown", "chgrp")
            and recursive
            and any(self._whole_or_outside(t) for t in operands[1:])
        ):
            return f"recursive {name} of the workspace or outside it is not allowed"
        if name in _POWER or (name == "init" and operands[:1] in (["0"], ["6"])):
            return "shutting down or rebooting the machine is not allowed"
        if name == "systemctl" and set(args) & {"poweroff", "reboot", "halt", "kexec"}:
            return "shutting down or rebooting the machine is not allowed"
        if name in ("kill", "pkill", "killall") and ("-1" in args or "1" in operands):
            return "killing every process (or init) is not allowed"
        if name == "git":
            return self._git(args)
        return self._writes(name, args, flags, operands)

    def _inside_or_root(self, target: str) -> bool:
        return self._inside(target) or (
            not target.startswith(("~", "$", "-")) and self._real(target) == self.workspace
        )

    def _writes(
        self, name: str, args: list[str], flags: set[str], operands: list[str]
    ) -> str | None:
        if name == "mv":
            touched = operands
        elif name in ("cp", "install", "ln", "rsync"):
            touched = operands[-1:]  # the destination
        elif name in ("tee", "truncate") or (name == "sed" and "-i" in flags):
            touched = operands[1:] if name == "sed" else operands
        elif name == "crontab" and "-r" in flags:
            return "removing the user's crontab is not allowed"
        else:
            return None
        for target in touched:
            if target == "/" or self._outside(target):
                return f"{name} would change {target}, outside the workspace: work inside it"
        return None

    def _find(self, args: list[str]) -> str | None:
        first_test = next((i for i, w in enumerate(args) if w.startswith("-")), len(args))
        roots = args[:first_test] or ["."]
        patterns = [
            args[i + 1]
            for i, w in enumerate(args[:-1])
            if w in ("-name", "-iname", "-path", "-ipath", "-regex")
        ]
        filtered = any(p.strip("*.") for p in patterns)  # "*" alone filters nothing
        for root in roots:
            if not self._inside(root) and not (self._inside_or_root(root) and filtered):
                return (
                    "find -delete outside the workspace, or over all of it: filter with "
                    "-name or -path, inside the workspace"
                )
        return None

    @staticmethod
    def _git(args: list[str]) -> str | None:
        rest = list(args)
        while rest and rest[0].startswith("-"):  # git's own options, some with a value
            option = rest.pop(0)
            if option in _GIT_OPTIONS_WITH_VALUE and rest:
                rest.pop(0)
        sub, sub_args = (rest[0], rest[1:]) if rest else ("", [])
        flags = _flags(sub_args)
        forced = flags & {"-f", "--force", "--force-with-lease", "--mirror", "--delete"}
        if sub == "push" and (forced or any(a.startswith("+") for a in sub_args)):
            return "force-pushing rewrites others' history: never force-push"
        if sub == "reset" and "--hard" in sub_args:
            return (
                "git reset --hard throws away the user's work: make a new commit or use "
                "git stash instead"
            )
        if sub == "clean" and flags & {"-f", "--force"}:
            return "git clean -f deletes untracked files the user may need"
        if sub in ("checkout", "restore") and "." in sub_args and "--staged" not in sub_args:
            return "discarding every change in the working tree is not allowed"
        if sub == "branch" and "-D" in flags:
            return "force-deleting branches is not allowed"
        if sub == "config" and any(k in " ".join(sub_args) for k in ("hooksPath", "fsmonitor")):
            return "setting git hooks or fsmonitor runs code outside the sandbox: not allowed"
        return None
