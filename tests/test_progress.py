"""Progress reports (``sim.util.progress``): what a long job says, how often, and where.

Truth: the time left at a constant rate is elapsed / done x (total - done); a report off a
terminal is plain lines (no carriage return), throttled, with the first and the last line
always written; ``--quiet`` writes nothing.
"""

from __future__ import annotations

import io
import time

import pytest

from sim.util import progress


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


@pytest.fixture
def stream():
    buf = io.StringIO()             # not a terminal: isatty() is False
    progress.set_stream(buf)
    progress.set_quiet(False)
    yield buf
    progress.set_stream(None)
    progress.set_quiet(False)


def test_remaining_time_is_the_rate_so_far():
    assert progress.remaining_s(2, 10, 30.0) == pytest.approx(120.0)      # 15 s a step, 8 to go
    assert progress.remaining_s(0, 10, 5.0) is None                       # nothing finished: unknown
    assert progress.remaining_s(3, None, 5.0) is None                     # no total: unknown
    assert progress.remaining_s(10, 10, 5.0) == 0.0


def test_format_seconds():
    assert progress.format_s(7.4) == "7 s"
    assert progress.format_s(125) == "2 min 05 s"
    assert progress.format_s(3780) == "1 h 03 min"


def test_task_lines_off_a_terminal_are_plain_and_throttled(stream):
    clock = Clock()
    t = progress.Task("searching", total=4, unit="trials", clock=clock)
    t.start()
    for _ in range(3):                  # 1 s apart: inside the plain-line interval, not written
        clock.t += 1.0
        t.advance(note="x")
    clock.t += progress.PLAIN_INTERVAL_S
    t.advance(note="last")
    t.finish()
    text = stream.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert lines[0] == "searching: 0/4 trials, 0 s elapsed"
    assert lines[1] == f"searching: 4/4 trials (last), {progress.format_s(3 + progress.PLAIN_INTERVAL_S)} elapsed"
    assert lines[2].startswith("searching: done, 4 trials in")
    assert len(lines) == 3


def test_task_estimates_the_time_left(stream):
    clock = Clock()
    t = progress.Task("planning", total=5, unit="devices", clock=clock)
    clock.t = 20.0
    t.done = 2
    assert t.line() == "planning: 2/5 devices, 20 s elapsed, about 30 s left"


def test_quiet_writes_nothing(stream):
    progress.set_quiet(True)
    with progress.task("x", total=2) as t:
        t.advance()
    with progress.stage("y", estimate_s=1):
        pass
    progress.say("z")
    assert stream.getvalue() == ""


def test_stage_says_what_then_the_elapsed_time(stream):
    with progress.stage("measuring", estimate_s=60, interval_s=0.05):
        time.sleep(0.3)
    lines = stream.getvalue().splitlines()
    assert lines[0] == "measuring (about 1 min 00 s)..."
    assert any(line.startswith("  ... measuring: 0 s elapsed, about 1 min 00 s left") for line in lines[1:-1])
    assert lines[-1] == "  measuring: took 0 s"
    assert "\r" not in stream.getvalue()


def test_a_quick_or_failing_stage_says_nothing(stream):
    # a cache hit says nothing; a step failing at once (bad input) leaves stderr to its one error line
    with progress.stage("loading", interval_s=5.0):
        pass
    with pytest.raises(ValueError):
        with progress.stage("measuring", interval_s=5.0):
            raise ValueError("bad input")
    assert stream.getvalue() == ""


def test_sweep_progress_is_plain_lines_off_a_terminal():
    from sim.apps.sweep.progress import ProgressBar

    buf = io.StringIO()
    bar = ProgressBar(3, label="grid", stream=buf)
    bar.update(1)
    bar.update(2)
    bar.close()
    text = buf.getvalue()
    assert "\r" not in text
    assert text.splitlines()[0].startswith("grid: 0/3 points (0%)")
    assert text.splitlines()[-1].startswith("grid: 3/3 points (100%)")


def test_say_waits_so_an_input_error_stays_one_line(stream):
    progress.say("doing x")
    progress.drop_pending()                 # what the command line does on bad input
    time.sleep(progress.SAY_DELAY_S + 0.3)
    assert stream.getvalue() == ""
    progress.say("doing y")
    time.sleep(progress.SAY_DELAY_S + 0.5)  # nothing else came: shown after the delay
    assert stream.getvalue() == "doing y\n"
    progress.say("doing z")
    with progress.task("w", total=1) as t:  # another report shows it first, in order
        t.advance()
    assert stream.getvalue().startswith("doing y\ndoing z\nw: 0/1")
