"""transformer-spec conformance suite: every invariant of ``spec``, checked against any backend.

>>> from conformance import run, render_table
>>> report = run("numpy", dtypes=("float32",), profile="dev")   # doctest: +SKIP
>>> print(render_table(report))                                  # doctest: +SKIP
"""

from .runner import Report, Result, render_table, run

__all__ = ["Report", "Result", "render_table", "run"]
