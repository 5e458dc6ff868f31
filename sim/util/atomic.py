"""Atomic file output: write to a temporary file in the same folder, then rename.

A reader never sees a half-written file, and a failed write leaves nothing behind. The
temporary file is a hidden sibling, ``.<name>.sim-<host>-<pid>-<random>.tmp``; one left by
a process that was killed (``kill -9`` gives it no chance to clean up) is removed by the next
write into the same folder: its process is gone (or, from another machine, it is a day old).

``check_output`` checks a path a command will write, before the command's work starts: a
file or folder that can be created there (its parent creatable and writable, not a folder
where a file is meant, not a file where a folder is meant). ``folder_lock`` serialises the
writers of one output folder, so two runs into one ``--out`` never mix their files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import tempfile
import time
from pathlib import Path

from sim.errors import InputError

#: A temporary file from another machine (or of an unknown process) is stale after this long.
STALE_AFTER_S = 24 * 3600

_HOST = hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]
_TMP = re.compile(r"^\..+\.sim-([0-9a-f]{6})-(\d+)-[a-z0-9_]+\.tmp$")


def _default_mode() -> int:
    """0o666 less the process umask: the mode ``open()`` would give a new file."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:          # another user's process (EPERM): alive
        return True
    try:                     # Linux: a killed process its parent has not reaped yet writes no more
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rsplit(b")", 1)[-1].split()[0] != b"Z"
    except (OSError, IndexError):
        return True


def clean_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Remove the temporary files of writes that never finished in ``folder``: those of a
    process of this machine that is gone, and those older than ``STALE_AFTER_S``. The removed
    paths; files of other names are never touched."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return removed
    now = time.time()
    for entry in entries:
        m = _TMP.match(entry.name)
        if not m or not entry.is_file(follow_symlinks=False):
            continue
        try:
            old = now - entry.stat(follow_symlinks=False).st_mtime > STALE_AFTER_S
            if old or (m.group(1) == _HOST and not _alive(int(m.group(2)))):
                os.unlink(entry.path)
                removed.append(Path(entry.path))
        except OSError:
            pass
    return removed


def write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    return write_chunks(path, (data,))


def write_chunks(path: str | os.PathLike, chunks) -> Path:
    """``write_bytes`` of the bytes ``chunks`` yields, one after another: the whole never sits in memory."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"{path}: is a folder; expected a file path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temporaries(path.parent)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.sim-{_HOST}-{os.getpid()}-",
                                   suffix=".tmp")
    except OSError as exc:
        raise InputError(f"{path}: cannot write here ({exc.strerror}); expected a writable folder") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), _default_mode())       # mkstemp creates 0600
            for chunk in chunks:
                fh.write(chunk)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError):
            raise InputError(f"{path}: write failed ({exc.strerror})") from None
        raise
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def write_json(path: str | os.PathLike, obj) -> Path:
    return write_text(path, json.dumps(obj, indent=2, sort_keys=True) + "\n")


def _creatable_folder(folder: Path, label: str) -> None:
    """``folder`` exists as a writable folder, or can be made: its first existing ancestor is a
    writable folder."""
    probe = folder
    while not probe.exists():
        if probe.is_symlink():
            raise InputError(f"{label}: {probe} is a broken link; expected a folder that exists or can be made")
        if probe.parent == probe:
            break
        probe = probe.parent
    if not probe.is_dir():
        raise InputError(f"{label}: {probe} is a file, not a folder; expected a path whose folders can be made")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise InputError(f"{label}: {probe} is not writable; expected a folder this user can write")


def check_output(path: str | os.PathLike, kind: str = "file", flag: str = "--out") -> Path:
    """Refuse, before any work, an output path that cannot be written.

    ``kind``: ``"file"`` (a file is written at ``path``: not an existing folder, nor anything
    else that is not a regular file), ``"folder"`` (files are written into ``path``: not an
    existing file). Nothing is created. Raises ``InputError`` naming the flag and the path.
    """
    if kind not in ("file", "folder"):
        raise ValueError(f"kind {kind!r}: expected 'file' or 'folder'")
    if str(path) == "":
        raise InputError(f"{flag}: empty path; expected a {kind} path")
    path = Path(path)
    label = f"{flag} {path}"
    if kind == "file":
        if path.is_dir():
            raise InputError(f"{label}: is a folder; expected a file path")
        if path.exists() and not path.is_file():
            raise InputError(f"{label}: not a regular file; expected a file path")
        _creatable_folder(path.parent, label)
    else:
        if path.exists() and not path.is_dir():
            raise InputError(f"{label}: is a file, not a folder; expected a folder path")
        _creatable_folder(path, label)
    return path


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike):
    """Hold an exclusive lock on ``folder`` (created if missing) while the block writes into it:
    two writers of one folder take turns, so the files in it come from one writer. The lock is on
    the folder itself (``flock``), so nothing is left behind; without ``fcntl`` (Windows) the
    block runs unlocked."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        raise InputError(f"{folder}: cannot write here ({exc.strerror}); expected a writable folder") from None
    try:
        try:
            import fcntl  # noqa: PLC0415 - POSIX only: Windows has no fcntl
        except ImportError:
            fcntl = None
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield folder
    finally:
        os.close(fd)            # closing the descriptor releases the lock
