"""Files other people can read: written atomically, with the process umask's permissions.

``safetensors`` and ``tempfile`` create files readable by their owner only (mode 0600,
folders 0700), whatever the umask says. A workshop that shares a run folder then cannot
read the weights. Everything ``ftlib`` writes for people to keep (weights, metrics,
predictions) goes through :func:`share`, which gives it the mode a plain ``open()``
would have: 0644 for files and 0755 for folders under the usual umask 022.
"""
from __future__ import annotations

import os
from pathlib import Path

__all__ = ["share", "umask", "write_text_atomic"]


def umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    current = os.umask(0o022)
    os.umask(current)
    return current


def share(path: str | Path) -> Path:
    """Give `path` (and, for a folder, everything in it) the permissions the umask allows."""
    path, mask = Path(path), umask()
    paths = [path, *path.rglob("*")] if path.is_dir() else [path]
    for p in paths:
        if not p.is_symlink():
            p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` under a temporary name, then rename: never a half-written file."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8", newline="") as f:  # open() honours the umask
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path
