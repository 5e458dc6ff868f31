"""The system-under-test model: SimPy processes between LoadGen's queries and completions.

``system`` holds the description (``SystemSpec``, read from YAML with one-line errors);
``stages`` holds the per-query host stages in front of the batcher (issue, pre-processing),
``batching`` the batching policies, ``device`` the accelerator instances and their link,
``engine`` the run that wires them together, and ``naive`` a one-process-per-query model of
the same system used as a reference.
"""
