"""Sweep grids: reading a grid file, checking it, and expanding it into distinct points (the grid
format is described in ``sim.apps.sweep``)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

from sim.apps.sweep.fields import check_value, field_name
from sim.apps.sweep.point import describe_point, point_id
from sim.apps.sweep.system import system_and_cost
from sim.errors import InputError, field_error
from sim.loadgen.scenarios import SCENARIOS
from sim.util.yamlfile import read_yaml

GRID_KEYS = ("name", "description", "base", "axes", "points")


@dataclass
class Grid:
    """An expanded grid: its points (parameter mappings, distinct ids, in grid order)."""
    source: str
    name: str
    points: list[dict]
    ids: list[str]
    duplicates: int = 0          # combinations that collapsed onto an earlier point


def _check_mapping(d, src: str, where: str, base_dir: Path) -> dict:
    if d is None:
        return {}
    if not isinstance(d, dict):
        raise field_error(src, where, d, "a mapping of point fields")
    return {field_name(k, src, f"{where}.{k}"): check_value(k, v, src, f"{where}.{k}", base_dir)
            for k, v in d.items()}


def _normal_point(merged: dict, src: str, where: str) -> dict:
    """Drop what does not apply (QPS outside Server) and check the point as a whole."""
    if "scenario" not in merged:
        raise field_error(src, f"{where}.scenario", None, f"one of {list(SCENARIOS)} (required in every point)")
    p = dict(merged)
    if p["scenario"] != "Server":
        p.pop("qps", None)
        p.pop("search", None)
    try:
        system_and_cost(p, build_cost=False)
    except InputError as exc:
        raise InputError(f"{src}: {where} ({describe_point(p)}): {exc}") from None
    return p


def expand(data, src: str = "grid", base_dir: str | Path = ".") -> Grid:
    """Check a grid mapping and list its points (distinct ids, in grid order)."""
    base_dir = Path(base_dir)
    if not isinstance(data, dict) or not data:
        raise InputError(f"{src}: empty grid; expected a mapping with base, axes and/or points (see sim.apps.sweep)")
    for key in data:
        if key not in GRID_KEYS:
            raise field_error(src, str(key), data[key], f"one of {list(GRID_KEYS)} (a point field belongs "
                                                         f"under base, axes or points)")
    base = _check_mapping(data.get("base"), src, "base", base_dir)
    axes_raw = data.get("axes") or {}
    if not isinstance(axes_raw, dict):
        raise field_error(src, "axes", axes_raw, "a mapping of point field -> list of values")
    axes: dict[str, list] = {}
    for key, values in axes_raw.items():
        name = field_name(key, src, f"axes.{key}")
        if not isinstance(values, list) or not values:
            raise field_error(src, f"axes.{key}", values, "a non-empty list of values")
        axes[name] = [check_value(name, v, src, f"axes.{key}[{i}]", base_dir) for i, v in enumerate(values)]
    extra = data.get("points") or []
    if not isinstance(extra, list):
        raise field_error(src, "points", extra, "a list of point mappings")
    extra = [_check_mapping(p, src, f"points[{i}]", base_dir) for i, p in enumerate(extra)]
    if not axes and not extra and not base:
        raise InputError(f"{src}: the grid has no points; expected base, axes and/or points")

    raw: list[tuple[str, dict]] = []
    if axes or not extra:
        names = list(axes)
        for k, combo in enumerate(itertools.product(*(axes[n] for n in names))):
            raw.append((f"point {k}", {**base, **dict(zip(names, combo))}))
    raw += [(f"points[{i}]", {**base, **p}) for i, p in enumerate(extra)]

    points, ids, seen = [], [], set()
    for where, merged in raw:
        p = _normal_point(merged, src, where)
        try:
            pid = point_id(p)
        except (TypeError, ValueError):
            raise InputError(f"{src}: {where}: a value is not plain data (numbers, strings, lists, mappings); "
                             f"expected values JSON can hold") from None
        if pid in seen:
            continue
        seen.add(pid)
        points.append(p)
        ids.append(pid)
    name = data.get("name") if isinstance(data.get("name"), str) else Path(src).stem
    return Grid(src, name, points, ids, duplicates=len(raw) - len(points))


def load_grid(path: str | Path) -> Grid:
    """Read a grid file and expand it (system files it names are relative to its folder)."""
    path = Path(path)
    data = read_yaml(path, "a sweep grid (see sim.apps.sweep)")
    return expand(data, str(path), path.parent)
