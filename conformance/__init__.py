"""transformer-spec conformance suite: every invariant of ``spec``, checked against any backend.

>>> from transformer_spec.conformance import run, render_table
>>> report = run("numpy", dtypes=("float32",), profile="dev")   # doctest: +SKIP
>>> print(render_table(report))                                  # doctest: +SKIP
"""

__all__ = ["Report", "Result", "render_table", "run", "run_tokenizer"]


def __getattr__(name: str):
    # Imported on first use: the runner brings in Hypothesis, which a plain `import transformer_spec.conformance.cli` should not pay for.
    if name in __all__:
        from . import runner

        return getattr(runner, name)
    raise AttributeError(f"module 'conformance' has no attribute {name!r}")
