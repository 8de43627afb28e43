"""Safety rails for `run_command`: refuse destructive commands, with a reason the model can
act on. Pure functions: they decide, `commands.py` runs.

Commands are split into simple commands at `;`, `&&`, `||`, `|`, `&` and newlines, and text
inside `$(...)`, backquotes and `sh -c '...'` is checked as well, so that spellings like
`/bin/rm -fr ~`, `sudo rm`, `xargs rm -rf` or `bash -c "rm -rf /"` are caught alike.
"""

from __future__ import annotations

import os
import re
import shlex
from collections.abc import Iterator
from pathlib import Path

_SEPARATORS = {";", "&&", "||", "|", "&", "|&", ";;", "(", ")", "\n"}
_WRAPPERS = {
    "sudo",
    "doas",
    "command",
    "builtin",
    "exec",
    "nohup",
    "nice",
    "time",
    "env",
    "xargs",
    "timeout",
    "stdbuf",
    "ionice",
    "setsid",
    "busybox",
}
_SHELLS = {"sh", "bash", "zsh", "dash", "ksh", "fish"}
_FORK_BOMB = re.compile(r"(\w+|:)\s*\(\)\s*\{[^}]*\1\s*\|\s*\1\s*&[^}]*\}")
_SUBSTITUTION = re.compile(r"\$\(([^()]*)\)|`([^`]*)`|<\(([^()]*)\)")
_POWER = {"shutdown", "reboot", "halt", "poweroff"}
_SYSTEM_DIRS = (
    "/etc",
    "/usr",
    "/bin",
    "/sbin",
    "/lib",
    "/boot",
    "/sys",
    "/proc",
    "/dev",
    "/var",
    "/opt",
    "/root",
    "/home",
)


def _split(command: str) -> Iterator[list[str]]:
    """Simple commands (as word lists) of a shell command line."""
    lexer = shlex.shlex(command.replace("\n", " ; "), posix=True, punctuation_chars=";&|()<>")
    lexer.whitespace_split = True
    lexer.commenters = ""
    words: list[str] = []
    try:
        tokens = list(lexer)
    except ValueError:  # unbalanced quotes: judge the raw words
        tokens = command.split()
    for token in tokens:
        if token in _SEPARATORS or set(token) <= set(";&|()"):
            if words:
                yield words
            words = []
        else:
            words.append(token)
    if words:
        yield words


def _strip_wrappers(words: list[str]) -> list[str]:
    """`sudo -u x timeout 5 env A=1 rm ...` -> `rm ...`."""
    while words:
        head = os.path.basename(words[0])
        if head in _WRAPPERS:
            words = words[1:]
            while words and (words[0].startswith("-") or words[0].replace(".", "").isdigit()):
                words = words[1:]
        elif "=" in words[0] and not words[0].startswith("-"):
            words = words[1:]  # a variable assignment before the command
        else:
            break
    return words


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

    def _outside_or_whole(self, target: str) -> bool:
        """Whether `target` names the workspace itself, something above it, or outside it."""
        if target in ("*", ".*") or target.startswith(("~", "$HOME", "${HOME}", "$")):
            return True
        path = Path(os.path.expanduser(target))
        real = (path if path.is_absolute() else self.workspace / path).resolve()
        return real == self.workspace or self.workspace not in real.parents

    def refusal(self, command: str) -> str | None:
        """Why `command` is refused, or None when it may run."""
        if _FORK_BOMB.search(command):
            return "a fork bomb: it would exhaust the machine's processes"
        for match in _SUBSTITUTION.finditer(command):
            inner = next(group for group in match.groups() if group is not None)
            if reason := self.refusal(inner):
                return reason
        if re.search(r"\b(curl|wget)\b[^|;&]*\|\s*(sudo\s+)?(ba|z|da|k)?sh\b", command):
            return "piping a download into a shell runs unreviewed code: download, read, then run"
        if re.search(r"(^|[\s;&|])(>|>>)\s*/dev/(sd|nvme|vd|hd|xvd|mmcblk|disk)", command):
            return "writing to a disk device destroys its data"
        if re.search(r"(^|[^\w/.-])(>|>>)\s*(/etc|/usr|/bin|/boot|/sys)(/|\s|$)", command):
            return "writing into system directories is not allowed: work inside the workspace"
        for words in _split(command):
            if reason := self._simple(_strip_wrappers(words), words):
                return reason
        return None

    def _simple(self, words: list[str], original: list[str]) -> str | None:
        if not words:
            return None
        if os.path.basename(original[0]) in ("sudo", "doas", "su"):
            return "no sudo: commands run as the agent, inside the workspace"
        name = os.path.basename(words[0])
        args = words[1:]
        flags = _flags(args)
        if name in _SHELLS and "-c" in flags:
            script = next((w for w in args if not w.startswith("-")), "")
            return self.refusal(script)
        if name in ("eval",):
            return self.refusal(" ".join(args))
        if name == "rm" and flags & {"-r", "-R", "--recursive"}:
            targets = _operands(args) or ["."]
            if any(self._outside_or_whole(t) for t in targets):
                return (
                    "recursive delete of the workspace or of something outside it: delete "
                    "only specific paths inside the workspace"
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
            and any(self._outside_or_whole(t) for t in _operands(args)[1:])
        ):
            return f"recursive {name} outside the workspace is not allowed"
        if name in _POWER or (name == "init" and args[:1] in (["0"], ["6"])):
            return "shutting down or rebooting the machine is not allowed"
        if name == "systemctl" and set(args) & {"poweroff", "reboot", "halt", "kexec"}:
            return "shutting down or rebooting the machine is not allowed"
        if name in ("kill", "pkill", "killall") and ("-1" in args or "1" in _operands(args)):
            return "killing every process (or init) is not allowed"
        if name == "git":
            return self._git(args)
        if name in ("tee", "cp", "mv", "install", "ln", "rsync") or (
            name == "sed" and "-i" in flags
        ):
            for target in _operands(args):
                if target.startswith(_SYSTEM_DIRS):
                    return f"writing to {target} is not allowed: work inside the workspace"
        if name in ("crontab",) and "-r" in flags:
            return "removing the user's crontab is not allowed"
        return None

    def _find(self, args: list[str]) -> str | None:
        first_test = next((i for i, w in enumerate(args) if w.startswith("-")), len(args))
        roots = args[:first_test] or ["."]
        filtered = bool(set(args) & {"-name", "-iname", "-path", "-ipath", "-regex", "-newer"})
        for root in roots:
            path = Path(os.path.expanduser(root))
            real = (path if path.is_absolute() else self.workspace / path).resolve()
            outside = real != self.workspace and self.workspace not in real.parents
            if outside or root.startswith(("~", "$")) or (real == self.workspace and not filtered):
                return (
                    "find -delete outside the workspace, or over all of it: "
                    "filter with -name or -path, inside the workspace"
                )
        return None

    @staticmethod
    def _git(args: list[str]) -> str | None:
        sub = next((a for a in args if not a.startswith("-")), "")
        flags = _flags(args)
        forced = flags & {"-f", "--force", "--force-with-lease", "--mirror", "--delete"}
        if sub == "push" and (forced or any(a.startswith("+") for a in args)):
            return "force-pushing rewrites others' history: never force-push"
        if sub == "reset" and "--hard" in args:
            return (
                "git reset --hard throws away the user's work: make a new commit or use "
                "git stash instead"
            )
        if sub == "clean" and flags & {"-f", "--force"}:
            return "git clean -f deletes untracked files the user may need"
        if sub in ("checkout", "restore") and "." in args:
            return "discarding every change in the working tree is not allowed"
        if sub == "branch" and flags & {"-D"}:
            return "force-deleting branches is not allowed"
        return None
