"""What a sweep shows while and after it runs: progress on stderr and the summary.

On a terminal the progress is a bar rewritten in place; elsewhere (a pipe, a log, CI) it is
plain lines, one every ``sim.util.progress.PLAIN_INTERVAL_S`` seconds plus the first and the
last, with no carriage returns."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from sim.util.progress import PLAIN_INTERVAL_S, format_s


class ProgressBar:
    """A one-line progress bar on stderr: done/total, rate, time left. Redrawn at most 10 times a second."""

    def __init__(self, total: int, done: int = 0, *, label: str = "sweep", stream=None, width: int = 28):
        self.total, self.done, self.start_done = total, done, done
        self.label, self.width = label, width
        self.stream = stream or sys.stderr
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):
            self.tty = False
        self.t0 = time.perf_counter()
        self._last = 0.0
        self._shown = None
        self.note = ""
        enc = (getattr(self.stream, "encoding", None) or "ascii").lower()
        self.fill, self.empty = ("\u2588", "\u00b7") if "utf" in enc else ("#", "-")
        self._draw(force=True)

    def update(self, n: int = 1, note: str = "") -> None:
        self.done += n
        self.note = note
        self._draw()

    def _draw(self, force: bool = False) -> None:
        now = time.perf_counter()
        interval = 0.1 if self.tty else PLAIN_INTERVAL_S
        if (not force and now - self._last < interval and self.done < self.total) or self._shown == self.done:
            return
        self._last, self._shown = now, self.done
        note = self.note
        frac = self.done / self.total if self.total else 1.0
        filled = int(round(frac * self.width))
        elapsed = now - self.t0
        ran = self.done - self.start_done
        rate = ran / elapsed if elapsed > 0 else 0.0
        left = (self.total - self.done) / rate if rate > 0 else None
        eta = f"{int(left // 60)}:{int(left % 60):02d}" if left is not None else "-:--"
        if not self.tty:
            self.stream.write(f"{self.label}: {self.done}/{self.total} points ({frac:.0%}), {rate:.1f} points/s, "
                              f"{format_s(elapsed)} elapsed" + (f", about {format_s(left)} left" if left else "")
                              + (f" ({note})" if note else "") + "\n")
            self.stream.flush()
            return
        text = (f"\r{self.label} |{self.fill * filled}{self.empty * (self.width - filled)}| "
                f"{self.done}/{self.total} {frac:4.0%}  {rate:6.1f} points/s  left {eta}"
                + (f"  {note}" if note else ""))
        self.stream.write(text.ljust(90))
        self.stream.flush()

    def close(self) -> None:
        self._draw(force=True)
        if self.tty:
            self.stream.write("\n")
        self.stream.flush()


@dataclass
class SweepSummary:
    out: Path
    points: int                  # distinct points in the grid
    already_done: int            # found finished in the results file
    ran: int                     # run now
    errors: list[str] = field(default_factory=list)     # "id: message" of points that failed now
    elapsed_s: float = 0.0
    executor: str = ""

    @property
    def points_per_s(self) -> float:
        return self.ran / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def describe(self) -> str:
        text = (f"{self.points} points: {self.already_done} already in {self.out}, {self.ran} run now "
                f"in {self.elapsed_s:.1f} s ({self.points_per_s:.1f} points/s, {self.executor})")
        if self.errors:
            text += f"; {len(self.errors)} failed (recorded with their error, retried on the next run): " \
                    + "; ".join(self.errors[:3]) + (" ..." if len(self.errors) > 3 else "")
        return text
