"""Snapshots of passing files before a retry build, and rollback of the ones that regress.
The workspace's files may be links or FIFOs a model made: they are read and written only as
regular files inside it (protocol/workspace_files.py)."""

from __future__ import annotations

from protocol import Layout, atomic_write_bytes
from protocol.workspace_files import read_bytes_inside, write_bytes_inside


def take(layout: Layout, iteration: int, files: list[str]) -> list[str]:
    """Copy `files` (those that exist) into `snapshots/<iteration>/`; return what was kept."""
    root = layout.snapshot_dir(iteration)
    kept = []
    for relative in files:
        data = read_bytes_inside(layout.workspace, relative)
        if data is not None:
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write_bytes(target, data, fsync=False)
            kept.append(relative)
    return kept


def changed(layout: Layout, iteration: int, files: list[str]) -> list[str]:
    """The snapshotted files whose content differs now."""
    root = layout.snapshot_dir(iteration)
    out = []
    for relative in files:
        saved = root / relative
        if saved.is_file() and read_bytes_inside(layout.workspace, relative) != saved.read_bytes():
            out.append(relative)
    return out


def rollback(layout: Layout, iteration: int, files: list[str]) -> list[str]:
    """Put back the snapshotted copies of `files` that changed; return those restored."""
    restored = []
    for relative in changed(layout, iteration, files):
        saved = (layout.snapshot_dir(iteration) / relative).read_bytes()
        if write_bytes_inside(layout.workspace, relative, saved):
            restored.append(relative)
    return restored
