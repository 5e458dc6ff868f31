"""Reading a user's text file (YAML, CSV, conf) with one clear error for what cannot be read.

Every user text file goes through ``read_text``: it must be a readable file of at most
``LIMITS["file_bytes"]`` bytes holding UTF-8 text; a UTF-8 byte-order mark (Excel's "CSV UTF-8")
is dropped, so the first column name never keeps it. A file that cannot be used is an
``InputError`` of one line naming the file, where the problem is (line and byte for text that
is not UTF-8) and what was expected; it never quotes the file's content (a command may be
pointed at any readable file). ``read_csv`` adds the CSV layer: the header and the rows as mappings,
a malformed line (a field longer than the csv module's field limit, say) refused with its
line number.
"""

from __future__ import annotations

import codecs
import csv
import io
from pathlib import Path

from sim.errors import InputError
from sim.util.checks import LIMITS


def _not_utf8(data: bytes, exc: UnicodeDecodeError, source: str, what: str) -> InputError:
    start = exc.start
    line = data.count(b"\n", 0, start) + 1
    column = start - (data.rfind(b"\n", 0, start) + 1) + 1
    return InputError(f"{source}: line {line}, byte {column}: 0x{data[start]:02x} is not UTF-8; "
                      f"expected {what} saved as UTF-8 text")


def decode(data: bytes, source: str, what: str, *, universal_newlines: bool = True) -> str:
    """``data`` as text: UTF-8, a leading byte-order mark dropped, ``\\r\\n`` and ``\\r`` read as
    ``\\n`` unless ``universal_newlines`` is false (the csv module reads line ends itself)."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) and not data.startswith(codecs.BOM_UTF8):
        raise InputError(f"{source}: the file is UTF-16 text (a UTF-16 byte-order mark); expected {what} saved as "
                         f"UTF-8 text (in Excel: 'CSV UTF-8')")
    if data.startswith(codecs.BOM_UTF8):
        data = data[len(codecs.BOM_UTF8):]
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise _not_utf8(data, exc, source, what) from None
    if universal_newlines and "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def _size(n: int) -> str:
    return f"{n // (1024 * 1024)} MiB" if n % (1024 * 1024) == 0 else f"{n:,} bytes"


def read_bytes(path: str | Path, what: str, *, limit: int | None = None) -> bytes:
    """The bytes of a user's file, refused past ``limit`` (default and at most ``LIMITS["file_bytes"]``);
    ``what`` names the expected content in errors."""
    path = Path(path)
    limit = min(limit or LIMITS["file_bytes"], LIMITS["file_bytes"])
    if not path.is_file():
        raise InputError(f"{path}: no such file; expected {what}")
    try:
        size = path.stat().st_size
        if size <= limit:
            with path.open("rb") as fh:
                data = fh.read(limit + 1)
            size = len(data)
    except OSError as exc:
        raise InputError(f"{path}: cannot read ({exc.strerror or type(exc).__name__}); expected {what}") from None
    if size > limit:
        raise InputError(f"{path}: {size:,} bytes, above the limit of {limit:,}; expected {what} of at most "
                         f"{_size(limit)}")
    return data


def read_text(path: str | Path, what: str, *, universal_newlines: bool = True, limit: int | None = None) -> str:
    """The text of a user's file (module docstring); ``what`` names the expected content in errors,
    ``limit`` a smaller size limit than ``LIMITS["file_bytes"]``."""
    return decode(read_bytes(path, what, limit=limit), str(path), what, universal_newlines=universal_newlines)


def read_csv(path: str | Path, what: str) -> tuple[list[str], list[dict]]:
    """(the header, the rows as ``csv.DictReader`` gives them) of a user's CSV file."""
    text = read_text(path, what, universal_newlines=False)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    rows: list[dict] = []
    start = 1                           # the line the record being read starts on
    try:
        header = list(reader.fieldnames or [])
        start = reader.line_num + 1
        for row in reader:
            rows.append(row)
            start = reader.line_num + 1
    except csv.Error as exc:
        problem = str(exc)
        if "field limit" in problem:
            problem = f"a field is longer than {csv.field_size_limit():,} characters"
        raise InputError(f"{path}: line {start}: not valid CSV ({problem}); expected {what}") from None
    return header, rows
