"""Sweep records and the results file: append-only JSON lines, one record per finished point,
each flushed and fsynced; a torn last line is cut off, a second writer is refused (a lock), and
``flatten`` turns a record into a flat table row.

A results file is recognised by its first line: a complete record of schema ``RECORD_SCHEMA``.
An existing file that is not empty and not recognised (a config, a table, a one-line JSON file
without its final newline, which would otherwise look like a torn line) is never written to,
cut or appended: it is refused before any work (``check_results_path``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from sim.errors import InputError
from sim.util import atomic

RECORD_SCHEMA = "sim.sweep.record/1"

#: How far into a file its first line is looked for (a record is far shorter).
FIRST_LINE_MAX = 16 * 1024 * 1024


def _is_first_record(line: bytes) -> bool:
    """The first line of a results file: a record of this schema."""
    try:
        rec = json.loads(line)
    except ValueError:
        return False
    return isinstance(rec, dict) and rec.get("schema") == RECORD_SCHEMA and isinstance(rec.get("id"), str)


def _foreign(path: Path, data: bytes) -> InputError | None:
    """The refusal of an existing file's content that is not sweep results (None: it is)."""
    if not data:
        return None
    first, newline, _ = data.partition(b"\n")
    if newline and _is_first_record(first):
        return None
    why = "its first line is not a sweep record" if newline else "it has no complete line"
    return InputError(f"--out {path}: an existing file that is not sweep results ({why}); expected a new path "
                      f"or a results file of an earlier sweep (JSON lines of schema {RECORD_SCHEMA}); "
                      f"it was left unchanged")


def check_results_path(path: str | Path) -> Path:
    """Refuse, before any work, a results path a sweep cannot use: a folder, a place that cannot
    be written, or an existing file that is not sweep results (only its first line is read)."""
    path = atomic.check_output(path, "file", "--out")
    if path.is_file():
        try:
            with open(path, "rb") as fh:
                head = fh.read(64 * 1024)
                while b"\n" not in head and len(head) < FIRST_LINE_MAX:
                    more = fh.read(1024 * 1024)
                    if not more:
                        break
                    head += more
        except OSError as exc:
            raise InputError(f"--out {path}: cannot read ({exc.strerror}); expected a readable results file") from None
        error = _foreign(path, head)
        if error is not None:
            raise error
    return path


def _parse_lines(data: bytes, path: Path) -> tuple[list[dict], int]:
    """Complete records and the byte length they span (a torn last line is left out)."""
    records, good_end, pos = [], 0, 0
    lines = data.split(b"\n")
    complete = lines[:-1]                      # the piece after the last newline is torn (or empty)
    for i, line in enumerate(complete):
        end = pos + len(line) + 1
        try:
            rec = json.loads(line) if line.strip() else None
            ok = rec is None or (isinstance(rec, dict) and isinstance(rec.get("id"), str))
        except ValueError:
            ok = False
        if not ok:
            if i == len(complete) - 1 and not lines[-1]:
                break                          # a damaged last line: treated as torn
            raise InputError(f"{path}: line {i + 1} is not a sweep record; expected one JSON object per line "
                             f"(schema {RECORD_SCHEMA})")
        if rec is not None:
            records.append(rec)
        pos = good_end = end
    return records, good_end


def read_records(path: str | Path, *, latest: bool = True) -> list[dict]:
    """The records of a results file (with ``latest``: the last record of each id, in file order)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; expected sweep results (JSON lines)")
    records, _ = _parse_lines(path.read_bytes(), path)
    if not latest:
        return records
    last = {r["id"]: r for r in records}
    return [r for r in records if last[r["id"]] is r]


class ResultsFile:
    """The results file, open for appending, locked against a second writer."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.fh = None
        self.created = False
        self.appended = 0

    def open(self) -> dict[str, dict]:
        """Open (creating it), cut a torn last line, return the finished records by id."""
        if self.path.is_dir():
            raise InputError(f"--out {self.path}: is a folder; expected a results file (JSON lines)")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.created = not self.path.exists()
            self.fh = open(self.path, "a+b")
        except OSError as exc:
            raise InputError(f"--out {self.path}: cannot open for writing ({exc.strerror})") from None
        try:
            import fcntl  # noqa: PLC0415 - POSIX only: Windows has no fcntl
            fcntl.flock(self.fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:
            pass
        except OSError:
            self.created = False
            self.close()
            raise InputError(f"--out {self.path}: another sweep is writing this file; expected one writer") from None
        self.fh.seek(0)
        data = self.fh.read()
        try:
            records, good_end = _parse_lines(data, self.path)
            error = _foreign(self.path, data)
            if error is not None:
                raise error
        except InputError:
            self.created = False
            self.close()
            raise
        if good_end < len(data):
            self.fh.truncate(good_end)
            os.fsync(self.fh.fileno())
        return {r["id"]: r for r in records if r.get("error") is None and r.get("metrics") is not None}

    def append(self, record: dict) -> None:
        line = json.dumps(record, sort_keys=True, separators=(",", ":"), allow_nan=False) + "\n"
        self.fh.write(line.encode())
        self.fh.flush()
        os.fsync(self.fh.fileno())
        self.appended += 1

    def close(self) -> None:
        """Close; a file this run created and never wrote to is removed (nothing half-made is left)."""
        if self.fh is not None:
            self.fh.close()
            self.fh = None
            if self.created and not self.appended:
                try:
                    self.path.unlink()
                except OSError:
                    pass


def flatten(record: dict) -> dict:
    """One flat row of a record: ``id``, ``error``, parameters and metrics as dotted keys
    (``batching.policy``, ``metrics.latency_ns.p99``), for a table; lists (a peak search's
    trials) are left out."""
    row = {"id": record["id"], "error": record.get("error")}

    def walk(prefix: str, x) -> None:
        if isinstance(x, dict):
            for k, v in x.items():
                walk(f"{prefix}.{k}" if prefix else k, v)
        elif not isinstance(x, list):
            row[prefix] = x

    walk("", {k: v for k, v in record["params"].items()})
    walk("metrics", record.get("metrics") or {})
    return row
