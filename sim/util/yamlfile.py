"""Reading a user's YAML file with one clear error for a missing or malformed file."""

from __future__ import annotations

from pathlib import Path

import yaml

from sim.errors import InputError


def read_yaml(path: str | Path, what: str):
    """The parsed content of ``path``; ``what`` names the expected content in errors."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; expected {what} in YAML")
    try:
        return yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({str(exc).splitlines()[0]}); expected {what}") from None
