"""Reading a user's YAML file with one clear error for a missing, unreadable or malformed file.

The file is read as text by ``sim.util.textfile`` (UTF-8, a byte-order mark accepted) and
parsed with PyYAML's safe loader, within two limits. Its size: at most ``MAX_BYTES`` (PyYAML
parses about 100 KB a second and holds about 100 times the text in memory, so a larger file
would take minutes and gigabytes; the project's system descriptions, grids and profiles are a
few KB). And aliases (``*name``) are expanded within a budget: an alias repeats a value
without copying it, so nine lines of nested aliases make a document of a billion values, cheap
to parse but not to walk, copy or print; a document whose aliases add more than
``ALIAS_BUDGET`` values, or whose alias refers to a value that holds it, is refused before any
value is built. No error prints the file's
values; with ``quote=False`` (a file whose content is not known to be the user's YAML) a syntax
error quotes none of its text either, only where it is.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from sim.errors import InputError
from sim.util.textfile import read_text

#: The most values that aliases may add to a document once expanded.
ALIAS_BUDGET = 100_000
#: The largest YAML file read (the module docstring).
MAX_BYTES = 1024 * 1024


def _children(node: yaml.Node) -> list:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def expanded_size(root: yaml.Node) -> tuple[int, int] | None:
    """(values once every alias is expanded, distinct values) of a composed document; None when
    an alias refers to a value that contains it."""
    size: dict[int, int] = {}
    open_nodes: set[int] = set()
    stack = [(root, False)]
    while stack:
        node, closing = stack.pop()
        key = id(node)
        if closing:
            open_nodes.discard(key)
            size[key] = 1 + sum(size[id(c)] for c in _children(node))
            continue
        if key in size:
            continue
        if key in open_nodes:
            return None
        open_nodes.add(key)
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in size)
    return size[id(root)], len(size)


class _AliasError(yaml.YAMLError):
    """A document whose aliases expand past the budget or into themselves."""


class BudgetLoader(yaml.SafeLoader):
    """PyYAML's safe loader, refusing a document whose aliases expand past ``ALIAS_BUDGET``
    values (or refer to a value that holds them) before constructing it."""

    def construct_document(self, node):
        sizes = expanded_size(node)
        if sizes is None:
            raise _AliasError("an alias (*name) refers to a value that contains it; expected a tree of values")
        expanded, distinct = sizes
        if expanded - distinct > ALIAS_BUDGET:
            shown = f"{expanded:,}" if expanded < 10**15 else "more than 10^15"
            raise _AliasError(f"its aliases (*name) expand it to {shown} values, {distinct:,} of them distinct, "
                              f"past the limit of {ALIAS_BUDGET:,} repeated values; expected a file whose aliases "
                              f"repeat fewer values")
        return super().construct_document(node)


_QUOTED = re.compile(r"'[^'<][^']+'|\"[^\"]+\"")


def _problem(exc: yaml.YAMLError, quote: bool) -> str:
    """One short line for a YAML error: where and what, never the document's text around it;
    without ``quote``, what PyYAML quotes of the text (an alias name, a tag) is left out too."""
    problem = getattr(exc, "problem", None) or getattr(exc, "context", None)
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    text = str(problem) if problem else (str(exc).splitlines() or [type(exc).__name__])[0]
    if not quote:
        text = _QUOTED.sub("'...'", text)
    if len(text) > 120:
        text = text[:120] + "..."
    return f"line {mark.line + 1}, column {mark.column + 1}: {text}" if mark is not None else text


def load_text(text: str, source: str, what: str, *, quote: bool = True):
    """The parsed content of YAML ``text`` read from ``source``; ``what`` names the expected content
    (``quote``: the module docstring)."""
    try:
        return yaml.load(text, Loader=BudgetLoader)       # BudgetLoader is a SafeLoader
    except _AliasError as exc:
        raise InputError(f"{source}: {exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"{source}: not valid YAML ({_problem(exc, quote)}); expected {what}") from None
    except RecursionError:
        raise InputError(f"{source}: values nested too deeply for YAML; expected {what}") from None
    except (ValueError, TypeError, OverflowError) as exc:
        # a value the safe loader cannot build: a date such as 2024-02-30, an integer of 10,000 digits
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:120]
        if not quote:
            reason = _QUOTED.sub("'...'", reason)
        raise InputError(f"{source}: a value YAML cannot read ({reason}); expected {what}") from None


def read_yaml(path: str | Path, what: str, *, quote: bool = True):
    """The parsed content of ``path``; ``what`` names the expected content in errors (``quote``:
    the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such file; expected {what} in YAML")
    return load_text(read_text(path, what, limit=MAX_BYTES), str(path), what, quote=quote)
