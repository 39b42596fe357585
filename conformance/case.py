"""One drawn example of one check: its inputs, the calls made, and the verdict.

A check talks to the backend only through its :class:`Case`: ``case.array``
converts a NumPy input to a native array and remembers it by name,
``case.call`` calls a backend method and remembers the call. When the check
fails, the case has everything the report needs — the shrunk inputs, the calls,
the expected and actual values — and can write a Python snippet that reproduces
the failure with only NumPy and the backend.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from transformer_spec.spec.tolerances import tolerance

LITERAL_LIMIT = 400  # arrays up to this many elements are written into the repro literally


class InvariantViolation(AssertionError):
    """An invariant does not hold for the drawn example."""

    def __init__(self, message: str, details: dict[str, Any] | None = None):
        super().__init__(message)
        self.message = message
        self.details = details or {}


@dataclass
class Comparison:
    """Where ``got`` differs most from ``expected``."""

    max_abs_error: float
    max_rel_error: float
    worst_index: tuple[int, ...]
    got: float
    expected: float
    allowed: float
    mismatched: int
    total: int

    def describe(self) -> str:
        return (
            f"{self.mismatched} of {self.total} elements outside tolerance; worst at index {self.worst_index}: "
            f"got {self.got!r}, expected {self.expected!r} (allowed error {self.allowed:.3g}); "
            f"max abs error {self.max_abs_error:.3g}, max rel error {self.max_rel_error:.3g}"
        )


def compare(
    got: np.ndarray, expected: np.ndarray, rtol: float, atol: float, magnitude: np.ndarray | None = None
) -> Comparison | None:
    """None when ``|got - expected| <= atol + rtol * magnitude`` everywhere (magnitude defaults to |expected|)."""
    got = np.asarray(got, dtype=np.float64)
    expected = np.asarray(expected, dtype=np.float64)
    if got.shape != expected.shape:
        raise InvariantViolation(f"shape mismatch: got {got.shape}, expected {expected.shape}")
    scale = np.abs(expected) if magnitude is None else np.broadcast_to(np.abs(magnitude), expected.shape)
    allowed = atol + rtol * scale
    same_special = (got == expected) | (np.isnan(got) & np.isnan(expected))  # equal infinities count as equal
    with np.errstate(invalid="ignore", over="ignore"):
        error = np.where(same_special, 0.0, np.abs(got - expected))
    error = np.where(np.isnan(error), np.inf, error)
    bad = error > allowed
    if not bad.any():
        return None
    excess = np.where(bad, error / np.maximum(allowed, 1e-300), -1.0)
    worst = np.unravel_index(int(np.argmax(excess)), excess.shape) if excess.ndim else ()
    with np.errstate(divide="ignore", invalid="ignore"):
        rel = np.where(same_special, 0.0, error / np.abs(expected))
    return Comparison(
        max_abs_error=float(np.max(error)),
        max_rel_error=float(np.nanmax(np.where(np.isfinite(rel), rel, np.inf))) if rel.size else 0.0,
        worst_index=tuple(int(i) for i in worst),
        got=float(got[worst]),
        expected=float(expected[worst]),
        allowed=float(allowed[worst]),
        mismatched=int(bad.sum()),
        total=int(bad.size),
    )


@dataclass
class Case:
    backend: Any
    dtype: str
    draw_fn: Any  # hypothesis data.draw
    forced: dict[str, Any] = field(default_factory=dict)  # draw name -> value: a covering-set row fixes these draws
    free_configs: bool = False  # draw model configs freely instead of from the covering pool (the thorough profile)
    inputs: dict[str, Any] = field(default_factory=dict)  # name -> value drawn (NumPy arrays, ints, configs, ...)
    setup: list[str] = field(default_factory=list)  # repro lines that build the inputs
    calls: list[str] = field(default_factory=list)  # repro lines that call the backend
    draws: list[str] = field(default_factory=list)  # the repro's variable of each draw, in order (the replay feeds them back)
    signatures: set[tuple] = field(default_factory=set)  # distinct (method, argument shapes/dtypes/statics) called
    _names: dict[int, str] = field(default_factory=dict)  # id(native array) -> its name in the repro
    _vars: dict[int, str] = field(default_factory=dict)  # id(drawn value) -> its variable in the repro
    _kept: list[Any] = field(default_factory=list)  # the drawn values, kept alive so their ids stay theirs
    _counter: int = 0

    @property
    def be(self) -> Any:
        return self.backend

    # ------------------------------------------------------------ inputs
    def draw(self, strategy: Any, name: str) -> Any:
        """Draw a value from a Hypothesis strategy (or take the covering row's value) and remember it as input ``name``."""
        value = self.forced[name] if name in self.forced else self.draw_fn(strategy, label=name)
        self.inputs[name] = value
        if callable(value) and not isinstance(value, type):
            return value
        var = self._fresh(name)
        self.setup.append(f"{var} = {array_literal(value) if isinstance(value, np.ndarray) else _literal(value)}")
        self.draws.append(var)
        self._vars[id(value)] = var
        self._kept.append(value)
        return value

    def _fresh(self, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``, ... when a variable of that name already exists in the repro."""
        taken = {line.split(" = ", 1)[0] for line in self.setup}
        if name not in taken:
            return name
        n = 2
        while f"{name}_{n}" in taken:
            n += 1
        return f"{name}_{n}"

    def note(self, name: str, value: Any) -> Any:
        """Remember a value derived from the draws (targets, a moved u, ...) as input ``name``."""
        self.inputs[name] = value
        var = self._fresh(name)
        self.setup.append(f"{var} = {array_literal(value) if isinstance(value, np.ndarray) else _literal(value)}")
        self._vars[id(value)] = var
        self._kept.append(value)
        return value

    def array(self, name: str, value: np.ndarray, dtype: str | None = None) -> Any:
        """``value`` as a native array of ``dtype`` (default: the case's float dtype for floats)."""
        source = self._vars.get(id(value))
        value = np.asarray(value)
        if dtype is None:
            dtype = self.dtype if value.dtype.kind == "f" else _numpy_dtype_name(value)
        native = self.backend.asarray(value, dtype)
        var = self._fresh(name + "_")
        self.setup.append(f"{var} = be.asarray({source or array_literal(value)}, {dtype!r})")
        self._names[id(native)] = var
        return native

    def params(self, name: str, values: dict[str, np.ndarray], recipe: str) -> dict[str, Any]:
        """A parameter dict converted to native arrays of the case's dtype; ``recipe`` is NumPy code that rebuilds ``values``."""
        native = {k: self.backend.asarray(v, self.dtype) for k, v in values.items()}
        var = self._fresh(name + "_")
        self.setup.append(f"{var} = {{k: be.asarray(v, {self.dtype!r}) for k, v in ({recipe}).items()}}")
        self._names[id(native)] = var
        return native

    def rounded(self, value: np.ndarray) -> np.ndarray:
        """``value`` rounded to the case's dtype and back to float64: what the backend actually sees."""
        return np.asarray(self.backend.to_numpy(self.backend.asarray(np.asarray(value), self.dtype)), dtype=np.float64)

    # ------------------------------------------------------------ calls
    def call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """Call ``backend.method(*args, **kwargs)``, remember the call, and return the raw (native) result."""
        return self.call_on(self.backend, method, *args, **kwargs)

    def call_on(self, target: Any, method: str, /, *args: Any, _may_raise: bool = False, **kwargs: Any) -> Any:
        """Like :meth:`call`, on ``target``: the backend, ``type(backend)``, or an object an earlier call
        returned (a tokenizer's stream decoder, say), which the repro names by that call's result.

        ``_may_raise``: the call is expected to raise (an error check); the repro catches and prints the error
        so that the lines after it still run."""
        if target is self.backend:
            target_name = "be"
        elif target is type(self.backend):
            target_name = "type(be)"
        elif id(target) in self._names:
            target_name = self._names[id(target)]
        else:
            raise ValueError(f"call_on: {target!r} was not returned by an earlier call, so the repro cannot name it")
        self._counter += 1
        result_name = f"out{self._counter}"
        rendered = [self._render(a) for a in args] + [f"{k}={self._render(v)}" for k, v in kwargs.items()]
        line = f"{result_name} = {target_name}.{method}({', '.join(rendered)})"
        if _may_raise:
            line = (
                f"try:\n    {line}\n    print({method!r}, 'returned without an error')\n"
                f"except Exception as error:\n    print({method!r}, 'raised', type(error).__name__, error)"
            )
        self.calls.append(line)
        if target is self.backend and not _may_raise:  # a call rejected by validation compiles nothing
            self.signatures.add(call_signature(self.backend, method, args, kwargs))
        result = getattr(target, method)(*args, **kwargs)
        self._names[id(result)] = result_name
        if isinstance(result, tuple):  # (logits, cache), (out, (keys, values)): later calls may pass a part back
            for i, part in enumerate(result):
                self._names.setdefault(id(part), f"{result_name}[{i}]")
                if isinstance(part, tuple):
                    for j, inner in enumerate(part):
                        self._names.setdefault(id(inner), f"{result_name}[{i}][{j}]")
        return result

    def numpy(self, native: Any) -> np.ndarray:
        """A native array as float64/int NumPy (bfloat16 and float16 widened)."""
        out = np.asarray(self.backend.to_numpy(native))
        return out.astype(np.float64) if out.dtype.kind == "f" else out

    def _render(self, value: Any) -> str:
        if id(value) in self._names:
            return self._names[id(value)]
        if isinstance(value, (list, tuple)) and value and any(id(v) in self._names for v in value):
            inner = ", ".join(self._render(v) for v in value)
            return f"[{inner}]" if isinstance(value, list) else f"({inner}{',' if len(value) == 1 else ''})"
        if isinstance(value, np.ndarray):
            return array_literal(value)
        return repr(value)

    # ------------------------------------------------------------ verdicts
    def fail(self, message: str, **details: Any) -> None:
        raise InvariantViolation(message, details)

    def require(self, condition: bool, message: str, **details: Any) -> None:
        if not condition:
            raise InvariantViolation(message, details)

    def assert_close(
        self,
        got: np.ndarray,
        expected: np.ndarray,
        what: str,
        kind: str = "primitive",
        magnitude: np.ndarray | None = None,
        dtype: str | None = None,
    ) -> None:
        """Fail unless ``got`` matches ``expected`` within the tolerance table's entry for (dtype, kind)."""
        tol = tolerance(dtype or self.dtype, kind)
        mismatch = compare(got, expected, tol.rtol, tol.atol, magnitude)
        if mismatch is not None:
            raise InvariantViolation(
                f"{what}: {mismatch.describe()}",
                {"comparison": mismatch, "rtol": tol.rtol, "atol": tol.atol},
            )

    def expect_error(self, exception: type[BaseException], must_mention: str, method: str, *args: Any, **kwargs: Any) -> None:
        """The call must raise ``exception`` whose message mentions ``must_mention`` (the argument's name)."""
        try:
            self.call_on(self.backend, method, *args, _may_raise=True, **kwargs)
        except exception as error:
            self.require(
                must_mention in str(error),
                f"{method} raised {type(error).__name__} but its message does not name {must_mention!r}: {error}",
            )
            return
        except Exception as error:  # the wrong kind of error: a crash inside a library, or an undocumented class
            self.fail(
                f"{method} raised {type(error).__module__}.{type(error).__name__} ({error}); expected {exception.__name__} naming {must_mention!r}"
            )
        self.fail(f"{method} accepted invalid input without an error; expected {exception.__name__} naming {must_mention!r}")

    def repro(self, backend_spec: str, invariant_id: str, message: str, header: str | None = None) -> str:
        """A self-contained script: NumPy, the backend, the shrunk inputs, the calls, then the check itself
        replayed on exactly these inputs (it exits 1 naming the invariant while the failure persists).

        ``header`` replaces the lines that bind ``be`` with ``load_backend(backend_spec)``
        (a tokenizer, for instance, is loaded another way)."""
        lines = (
            ["import numpy as np"]
            if header is not None
            else [
                "import numpy as np",
                "from transformer_spec.backends import load_backend",
            ]
        )
        if any("ModelConfig" in line for line in self.setup):
            lines.append("from transformer_spec.spec.config import ModelConfig")
        if any("init_parameters" in line for line in self.setup):
            lines.append("from transformer_spec.spec.model import init_parameters")
        if any("transformer_spec.conformance.strategies" in line for line in self.setup):
            lines.append("import transformer_spec.conformance.strategies")
        if any("transformer_spec.conformance.components" in line for line in self.setup):
            lines.append("import transformer_spec.conformance.components")
        lines.append(header if header is not None else f"be = load_backend({backend_spec!r})")
        lines += self.setup + self.calls
        shown = [c.split(" = ", 1)[0] for c in self.calls if " = " in c and not c.startswith("try:")]
        if shown:
            lines.append(f"print({shown[-1]})")
        lines.append(f"# {invariant_id}: {message.splitlines()[0][:200]}")
        lines.append("# The check itself, on these inputs (exits 1 and names the invariant while it fails):")
        lines.append("from transformer_spec.conformance.replay import replay")
        lines.append(f"replay(be, {invariant_id!r}, {self.dtype!r}, [{', '.join(self.draws)}])")
        return "\n".join(lines)


def _literal(value: Any) -> str:
    """Python source for a drawn value: NumPy scalars as plain Python numbers, so the repro needs no NumPy repr."""
    if isinstance(value, np.generic):
        return repr(value.item())
    if isinstance(value, (tuple, list)) and any(isinstance(v, np.generic) for v in value):
        inner = ", ".join(_literal(v) for v in value)
        return f"({inner}{',' if len(value) == 1 else ''})" if isinstance(value, tuple) else f"[{inner}]"
    return repr(value)


def call_signature(backend: Any, method: str, args: tuple, kwargs: dict) -> tuple:
    """(method, arguments) as a compiler sees them: every argument by name with defaults filled in (so
    ``attention(q, k, v)`` and ``attention(q, k, v, scale=None)`` are one program), arrays by shape and dtype."""
    try:
        bound = _method_signature(backend, method).bind(*args, **kwargs)
        bound.apply_defaults()
        named = tuple(bound.arguments.items())
    except (TypeError, ValueError):
        named = tuple(enumerate(args)) + tuple(sorted(kwargs.items()))
    return (method, _signature(named))


_SIGNATURES: dict[tuple[type, str], inspect.Signature] = {}


def _method_signature(backend: Any, method: str) -> inspect.Signature:
    """The signature of ``backend.method``, looked up once per class (the suite makes thousands of calls)."""
    key = (type(backend), method)
    if key not in _SIGNATURES:
        _SIGNATURES[key] = inspect.signature(getattr(backend, method))
    return _SIGNATURES[key]


def _signature(value: Any) -> Any:
    """What a compiled backend specialises on: shapes and dtypes of arrays, the values of static arguments
    (configs, flags, ints, strings); a float counts as a traced value, not a new program."""
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return ("array", tuple(int(n) for n in value.shape), str(value.dtype))
    if isinstance(value, dict):
        return tuple(sorted((str(k), _signature(v)) for k, v in value.items()))
    if isinstance(value, (tuple, list)):
        return tuple(_signature(v) for v in value)
    if isinstance(value, float) and not isinstance(value, bool):
        return "float"
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if hasattr(value, "length"):  # a KV cache (the protocol's or a backend's own): what it is, not how long (a hook's choice)
        return ("cache", type(value).__name__)
    try:
        hash(value)
        return value
    except TypeError:
        return type(value).__name__


def _numpy_dtype_name(value: np.ndarray) -> str:
    return "bool" if value.dtype == np.bool_ else str(value.dtype)


def array_literal(value: np.ndarray) -> str:
    """NumPy code that rebuilds ``value`` exactly (float values via repr round-trip)."""
    value = np.asarray(value)
    if value.size <= LITERAL_LIMIT:
        return f"np.array({value.tolist()!r}, dtype={_numpy_dtype_name(value)!r})"
    flat = value.ravel()
    # Too large to print: the flat values are still exact, wrapped at 120 columns by reshape.
    return f"np.array({flat.tolist()!r}, dtype={_numpy_dtype_name(value)!r}).reshape({value.shape})"
