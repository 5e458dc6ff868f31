"""Helpers with no knowledge of MLPerf: ``atomic`` file writes, ``yamlfile`` (safe YAML with
one-line errors), ``fingerprint`` (this machine, for caches), ``bisect`` (the one bisection
every search narrows its bracket with)."""
