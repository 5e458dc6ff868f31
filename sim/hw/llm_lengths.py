"""The mean prompt length of a benchmark's dataset, estimated from published results where no
source states it.

An MLPerf LLM benchmark publishes its dataset's mean *output* length (the reference README's
``tokens_per_sample``) but for some datasets not the mean *input* length. That number sets how much
prefill each generated token carries, which moves Offline tokens/s by up to a factor of two on a
compute-bound device, so an assumed value is the largest single error of the LLM calibration.

It can be measured instead: every unit (device + serving stack) runs several benchmarks with one set
of efficiencies, so the benchmark's prefill work is the one number that makes its rows agree with the
unit's other benchmarks. ``estimate`` profiles the calibration's own loss (the soft-L1 of log(predicted
/ published) that ``sim.hw.llm_calibrate.fit_unit`` minimises, summed over every row, after the full
two-stage fit) over the mean input of each named benchmark in turn, by golden-section search in log
space, and repeats the round until no estimate moves by more than the tolerance.

The estimate uses the published rows of *all* devices, so it is a calibration result like the step
cost's parameters: the workload file records it with ``prior_mean`` (the data-free assumption it
replaced), and a fold that holds a benchmark's rows out (leave one benchmark out) predicts them with
the prior mean, never with the estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from sim.errors import InputError
from sim.hw import llm_calibrate as lc

#: Golden ratio's conjugate for the section search.
_G = (math.sqrt(5.0) - 1.0) / 2.0


def fit_loss(cases: list[lc.Case], cal: lc.Calibration) -> float:
    """Mean soft-L1 loss of log(predicted / published) over the cases, on the fit's own scale
    (``ROW_SD`` and the f-scale of 3 of ``fit_unit``): a row predicted as impossible counts as a
    log error of 5, as in the fit."""
    f = 3.0
    total = 0.0
    for c in cases:
        try:
            v = lc.predict_case(cal, c)
            r = math.log(v / c.measured) if v > 0 else 5.0
        except InputError:
            r = 5.0
        z = (r / lc.ROW_SD / f) ** 2
        total += 2.0 * f * f * (math.sqrt(1.0 + z) - 1.0)
    return total / max(1, len(cases))


@dataclass
class Profile:
    """The loss at each mean input tried for one benchmark (tokens -> (loss, median |error|))."""
    name: str
    points: dict = field(default_factory=dict)

    def best(self) -> float:
        return min(self.points, key=lambda m: self.points[m][0])

    def within(self, rel_loss: float = 0.05) -> tuple[float, float]:
        """The range of means tried whose loss is within ``rel_loss`` of the best's."""
        lo = self.points[self.best()][0]
        ok = [m for m, (v, _) in self.points.items() if v <= lo * (1.0 + rel_loss)]
        return min(ok), max(ok)


def evaluate(means: dict, rows=None, path=None) -> tuple[float, float]:
    """(fit loss, median |error|) of the two-stage calibration with these mean inputs."""
    cases, _, _ = lc.load_cases(path=path, rows=rows, input_means=means)
    cal = lc.calibrate(cases)
    return fit_loss(cases, cal), median_error(cases, cal)


def median_error(cases: list[lc.Case], cal: lc.Calibration) -> float:
    """Median |predicted / published - 1|; a row the fitted unit cannot meet counts as infinite."""
    errs = []
    for c in cases:
        try:
            errs.append(abs(lc.predict_case(cal, c) / c.measured - 1.0))
        except InputError:
            errs.append(math.inf)
    return float(np.median(errs))


def estimate(names: dict, start: dict | None = None, rows=None, path=None, tol: float = 0.03,
             rounds: int = 3, say=print, score=None) -> tuple[dict, dict]:
    """(estimated mean input per benchmark, ``Profile`` per benchmark).

    ``names``: benchmark -> (lowest, highest) mean input tokens to search; ``start``: the means the
    search starts from (the workload files' otherwise). ``tol``: stop when the section is narrower
    than this in log units and when a round moves no estimate by more than it. ``score``: a function
    of the means giving (loss, median |error|), ``evaluate`` on ``rows`` / ``path`` by default."""
    if score is None:
        data = rows if rows is not None else lc.read_results(path)[0]      # read once for every evaluation

        def score(m: dict) -> tuple[float, float]:
            return evaluate(m, rows=data)
    means = dict(start or {})
    for n in names:
        means.setdefault(n, lc.workload(n).dataset.input.mean)
    profiles = {n: Profile(n) for n in names}
    cache: dict = {}

    def loss(n: str, m: float) -> float:
        key = tuple(sorted({**means, n: round(m, 1)}.items()))
        if key not in cache:
            cache[key] = score(dict(key))
            say(f"  {n}: mean input {m:7.1f} -> loss {cache[key][0]:.5f}, median |error| {100 * cache[key][1]:.1f}%")
        profiles[n].points[round(m, 1)] = cache[key]
        return cache[key][0]

    for r in range(rounds):
        moved = 0.0
        for n, (lo, hi) in names.items():
            profiles[n] = Profile(n)
            a, b = math.log(lo), math.log(hi)
            x1, x2 = b - _G * (b - a), a + _G * (b - a)
            f1, f2 = loss(n, math.exp(x1)), loss(n, math.exp(x2))
            while b - a > tol:
                if f1 <= f2:
                    b, x2, f2 = x2, x1, f1
                    x1 = b - _G * (b - a)
                    f1 = loss(n, math.exp(x1))
                else:
                    a, x1, f1 = x1, x2, f2
                    x2 = a + _G * (b - a)
                    f2 = loss(n, math.exp(x2))
            new = round(profiles[n].best(), 1)
            moved = max(moved, abs(math.log(new / means[n])))
            means[n] = new
        say(f"round {r + 1}: " + ", ".join(f"{n} {m:g}" for n, m in means.items() if n in names))
        if moved <= tol:
            break
    return {n: means[n] for n in names}, profiles
