"""Errors a user can cause, reported as one clear line.

Every ``InputError`` names what was wrong (a file, a field, a value) and what was
expected. The command line prints ``error: <message>`` and exits with status 2; library
callers catch ``InputError`` like any exception.
"""


class InputError(Exception):
    """Bad input from the user: a file, a name, a value that cannot be used."""


def field_error(source: str, field: str, value, expected: str) -> InputError:
    """Build the standard message: ``<source>: field '<field>' = <value!r>: expected <expected>``."""
    return InputError(f"{source}: field '{field}' = {value!r}: expected {expected}")
