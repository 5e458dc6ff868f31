"""Helpers with no knowledge of MLPerf: ``checks`` (the one validation layer for numbers that
enter from outside, and the work limits), ``textfile`` (reading a user's text file: UTF-8 with
a byte-order mark accepted, size caps, CSV limits), ``yamlfile`` (safe YAML with one-line
errors and an alias budget), ``atomic`` file writes, ``fingerprint`` (this machine, for
caches), ``bisect`` (the one bisection every search narrows its bracket with)."""
