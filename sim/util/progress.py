"""Progress reports on stderr for work that takes more than a few seconds.

Every long job of the commands (a QPS search, a plan, a calibration, a profile measurement, a
validation, a sweep) says what it is doing, how far it is, and an estimate of the time left:

    with progress.task("searching the peak Server QPS", total=14, unit="trials") as t:
        for ...:
            t.advance(note="38,000 QPS VALID")

    with progress.stage("measuring the onnxruntime profile of resnet50", estimate_s=12):
        ...                              # one opaque step: elapsed time against the estimate

On a terminal one line is rewritten in place (carriage returns); elsewhere (a pipe, a log
file, CI) plain lines are written, at most one every ``PLAIN_INTERVAL_S`` seconds plus the
first and the last, so a log stays readable. ``set_quiet(True)`` (the commands' ``--quiet``)
silences everything, and worker processes (a sweep's) never report: the main process does. The
time left is the elapsed time per finished step times the steps
still to do, or the estimate minus the elapsed time for a stage; an opaque stage past its
estimate says so instead of inventing a figure.
"""

from __future__ import annotations

import sys
import threading
import time
from contextlib import contextmanager
from typing import TextIO

#: seconds between two plain lines of the same task (not on a terminal)
PLAIN_INTERVAL_S = 5.0
#: seconds between two rewrites of the line on a terminal
TTY_INTERVAL_S = 0.2

_STATE = {"quiet": False, "stream": None}


def set_quiet(quiet: bool) -> None:
    """Silence (or restore) every progress report of this process."""
    _STATE["quiet"] = bool(quiet)


def quiet() -> bool:
    """Silenced by ``set_quiet``, or a worker process (a sweep's): only the main process reports."""
    import multiprocessing  # noqa: PLC0415 - cheap, but only asked when reporting

    return bool(_STATE["quiet"]) or multiprocessing.parent_process() is not None


def set_stream(stream: TextIO | None) -> None:
    """Write to ``stream`` instead of stderr (None: back to stderr); for tests."""
    _STATE["stream"] = stream


def _stream() -> TextIO:
    return _STATE["stream"] or sys.stderr


def _is_tty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def format_s(seconds: float) -> str:
    """``7 s``, ``2 min 05 s``, ``1 h 03 min``."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {(s % 3600) // 60:02d} min"


def remaining_s(done: float, total: float | None, elapsed_s: float) -> float | None:
    """Seconds left at the rate so far (None: unknown total or nothing finished yet)."""
    if not total or done <= 0 or done >= total:
        return 0.0 if total and done >= total else None
    return elapsed_s / done * (total - done)


#: seconds a ``say`` line waits before it is shown: an input error found by then replaces it,
#: so bad input stays one error line (``drop_pending``), and the line still comes within 2 s
SAY_DELAY_S = 0.8
_PENDING: list = []
_PENDING_LOCK = threading.Lock()


def say(message: str) -> None:
    """One line of what the command is doing (not shown with ``--quiet``). It is shown after
    ``SAY_DELAY_S``, or at once when another report or ``flush_pending`` comes first."""
    if quiet():
        return
    with _PENDING_LOCK:
        _PENDING.append((message, _stream()))
    timer = threading.Timer(SAY_DELAY_S, flush_pending)
    timer.daemon = True
    timer.start()


def flush_pending() -> None:
    """Show the ``say`` lines still waiting, in order."""
    with _PENDING_LOCK:
        lines = list(_PENDING)
        _PENDING.clear()
    for message, stream in lines:
        print(message, file=stream, flush=True)


def drop_pending() -> None:
    """Forget the ``say`` lines not shown yet (the command failed on its input first)."""
    with _PENDING_LOCK:
        _PENDING.clear()


class Task:
    """Counted steps of one job; ``advance`` after each, ``total`` may grow (``set_total``)."""

    def __init__(self, what: str, total: float | None = None, unit: str = "steps",
                 clock=time.monotonic) -> None:
        self.what, self.total, self.unit = what, total, unit
        self.done = 0.0
        self.note = ""
        self._clock = clock
        self._start = clock()
        self._last_out = -1e9
        self._tty = _is_tty(_stream())
        self._open_line = False

    def elapsed_s(self) -> float:
        return self._clock() - self._start

    def line(self) -> str:
        elapsed = self.elapsed_s()
        count = (f"{self.done:g}/{self.total:g} {self.unit}" if self.total
                 else f"{self.done:g} {self.unit}")
        left = remaining_s(self.done, self.total, elapsed)
        eta = f", about {format_s(left)} left" if left is not None and self.done < (self.total or 0) else ""
        note = f" ({self.note})" if self.note else ""
        return f"{self.what}: {count}{note}, {format_s(elapsed)} elapsed{eta}"

    def _emit(self, force: bool = False) -> None:
        if quiet():
            return
        flush_pending()
        now = self._clock()
        if not force and now - self._last_out < (TTY_INTERVAL_S if self._tty else PLAIN_INTERVAL_S):
            return
        self._last_out = now
        stream = _stream()
        if self._tty:
            stream.write("\r\x1b[K" + self.line())
            self._open_line = True
        else:
            stream.write(self.line() + "\n")
        stream.flush()

    def set_total(self, total: float | None) -> None:
        self.total = total

    def advance(self, steps: float = 1, note: str = "") -> None:
        self.done += steps
        if note:
            self.note = note
        self._emit()

    def start(self) -> None:
        self._emit(force=True)

    def finish(self, message: str = "") -> None:
        if quiet():
            return
        flush_pending()
        stream = _stream()
        text = message or f"{self.what}: done, {self.done:g} {self.unit} in {format_s(self.elapsed_s())}"
        if self._tty:
            stream.write("\r\x1b[K" + text + "\n")
        else:
            stream.write(text + "\n")
        stream.flush()


@contextmanager
def task(what: str, total: float | None = None, unit: str = "steps", done_message: str = ""):
    """A counted job: a first line at once, then a line per step (throttled), and a last one."""
    t = Task(what, total, unit)
    t.start()
    yield t
    t.finish(done_message)


#: an opaque stage shorter than this says nothing (a cache hit, or a quick error: bad input stays one line)
STAGE_QUIET_S = 0.5


@contextmanager
def stage(what: str, estimate_s: float | None = None, interval_s: float | None = None):
    """One opaque step (a measurement, a fit): a line once it has taken ``STAGE_QUIET_S`` (well
    within the first 2 s), then the elapsed time against the estimate every few seconds (a
    background thread), and the time it took at the end; nothing for a step that ends sooner
    or fails before that line."""
    if quiet():
        yield
        return
    stream = _stream()
    tty = _is_tty(stream)
    interval = interval_s if interval_s is not None else (1.0 if tty else PLAIN_INTERVAL_S * 2)
    start = time.monotonic()
    est = f" (about {format_s(estimate_s)})" if estimate_s else ""
    stop = threading.Event()
    said = threading.Event()

    def beat() -> None:
        if stop.wait(min(STAGE_QUIET_S, interval)):
            return
        flush_pending()
        print(f"{what}{est}...", file=stream, flush=True)
        said.set()
        while not stop.wait(interval):
            elapsed = time.monotonic() - start
            if estimate_s:
                left = estimate_s - elapsed
                tail = f", about {format_s(left)} left" if left > 0 else ", longer than estimated"
            else:
                tail = ""
            text = f"  ... {what}: {format_s(elapsed)} elapsed{tail}"
            stream.write(("\r\x1b[K" + text) if tty else text + "\n")
            stream.flush()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    ok = False
    try:
        yield
        ok = True
    finally:
        stop.set()
        thread.join()
        if said.is_set():
            text = f"  {what}: {'took' if ok else 'stopped after'} {format_s(time.monotonic() - start)}"
            stream.write(("\r\x1b[K" + text + "\n") if tty else text + "\n")
            stream.flush()
