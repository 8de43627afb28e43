"""Snapshots of passing files before a retry build, and rollback of the ones that regress."""

from __future__ import annotations

import shutil

from protocol import Layout


def take(layout: Layout, iteration: int, files: list[str]) -> list[str]:
    """Copy `files` (those that exist) into `snapshots/<iteration>/`; return what was kept."""
    root = layout.snapshot_dir(iteration)
    kept = []
    for relative in files:
        source = layout.workspace / relative
        if source.is_file():
            target = root / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            kept.append(relative)
    return kept


def changed(layout: Layout, iteration: int, files: list[str]) -> list[str]:
    """The snapshotted files whose content differs now."""
    root = layout.snapshot_dir(iteration)
    out = []
    for relative in files:
        saved, current = root / relative, layout.workspace / relative
        if saved.is_file() and (
            not current.is_file() or current.read_bytes() != saved.read_bytes()
        ):
            out.append(relative)
    return out


def rollback(layout: Layout, iteration: int, files: list[str]) -> list[str]:
    """Put back the snapshotted copies of `files` that changed; return those restored."""
    restored = changed(layout, iteration, files)
    for relative in restored:
        target = layout.workspace / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(layout.snapshot_dir(iteration) / relative, target)
    return restored
