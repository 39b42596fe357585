"""Checks for :mod:`transformer_spec.spec.gradients`: ``value_and_grad`` against float64 central differences.

Each checked function is a :class:`Problem`: named float64 variables and a
*program* that computes a scalar from their native arrays with the backend's
public methods. The scalar contracts every output with fixed random weights
(``sum(out * r)``, written with ``reshape`` and ``linear`` so that it needs no
array arithmetic beyond the backend's own methods), so every output element's
gradient takes part.

The problems are rebuilt from ``(name, seed)`` (and the config, for
composites) by :func:`primitive_problem` / :func:`composite_problem`, and
:func:`check_directional_derivatives` runs the whole comparison, so a failure's
repro is one line that calls the same code the check ran.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.config import ModelConfig
from transformer_spec.spec.gradients import (
    DIRECTIONS_PER_EXAMPLE,
    FINITE_DIFFERENCE_STEP,
    FINITE_DIFFERENCE_TOLERANCE,
    KINK_MARGIN,
)

from .. import reference as ref
from .. import strategies as cs
from ..case import Case, InvariantViolation
from ..registry import FLOAT, check
from ..runner import SkipCheck
from .softmax import SHAPES as SOFTMAX_SHAPES

IGNORE = -100  # the default ignore_index of cross_entropy

Program = Callable[[Any, dict[str, Any], str], Any]  # (backend, native variables, dtype) -> native scalar


@dataclass
class Problem:
    """A scalar function of named float arrays: what the gradient checks differentiate."""

    label: str  # what is differentiated, with its shapes, for the report
    variables: dict[str, np.ndarray]  # float64 values of the arrays differentiated
    program: Program


def require_autodiff(backend: Any) -> None:
    """Skip (with the reason in the report) unless the backend declares automatic differentiation."""
    if not getattr(backend, "supports_autodiff", False):
        raise SkipCheck(f"backend {backend.name!r} declares supports_autodiff = False: it has no gradients to check")


def require_float64(case: Case) -> None:
    require_autodiff(case.be)
    if case.dtype != "float64":
        raise SkipCheck(
            f"finite differences are checked in float64 only (a {case.dtype} central difference keeps about half "
            "its bits); run with --dtype float64"
        )


def contract(be: Any, outputs: list[Any], weights: list[np.ndarray], dtype: str) -> Any:
    """``sum_i sum(outputs[i] * weights[i])`` as a native 0-d array, from backend methods only."""
    flat = [be.reshape(o, (1, int(np.prod(tuple(o.shape), dtype=np.int64)))) for o in outputs]  # each (1, n_i)
    row = flat[0] if len(flat) == 1 else be.concat(flat, 1)  # (1, N)
    column = be.asarray(np.concatenate([np.ravel(w) for w in weights])[:, None], dtype)  # (N, 1)
    return be.reshape(be.linear(row, column), ())  # ()


# ---------------------------------------------------------------------- problems: primitives

# Gradient formulas do not depend on sizes the way rounding does, while every new shape costs a backend that
# compiles per shape (JAX) a compilation of the forward and of the backward kernel. So each primitive has two
# fixed variants (``seed % 2``) chosen to cover what its gradient can get wrong — a lone row and batch axes,
# the last and a middle axis, with and without a bias, a causal mask with fewer queries than keys and a query
# with no allowed key — and the seed draws new values (and new directions) for them every time. The value
# checks of each component cover all the other shapes.
VARIANTS = 2
Builder = Callable[[np.random.Generator, int], Problem]


def _away_from_zero(x: np.ndarray) -> np.ndarray:
    """Values at least KINK_MARGIN from 0 (ReLU's kink), same signs."""
    return np.where(x >= 0, 1.0, -1.0) * (np.abs(x) + KINK_MARGIN)


def _elementwise(method: str, **kwargs: Any) -> Builder:
    def build(rng: np.random.Generator, variant: int) -> Problem:
        shape = ((8,), (2, 5, 4))[variant]
        x = rng.standard_normal(shape) * 2
        if method == "relu":
            x = _away_from_zero(x)
        r = rng.standard_normal(shape)
        options = "".join(f" {k}={v}" for k, v in kwargs.items())
        return Problem(
            f"{method}{options} of x {shape}",
            {"x": x},
            lambda be, p, dtype: contract(be, [getattr(be, method)(p["x"], **kwargs)], [r], dtype),
        )

    return build


def _softmax(method: str) -> Builder:
    def build(rng: np.random.Generator, variant: int) -> Problem:
        shape, axis = (((5,), -1), ((2, 5, 3), 1))[variant]
        x, r = rng.standard_normal(shape) * 3, rng.standard_normal(shape)
        return Problem(
            f"{method} of x {shape} along axis {axis}",
            {"x": x},
            lambda be, p, dtype: contract(be, [getattr(be, method)(p["x"], axis=axis)], [r], dtype),
        )

    return build


def _linear(rng: np.random.Generator, variant: int) -> Problem:
    shape, dout, bias = (((5, 8), 4, True), ((2, 5, 4), 8, False))[variant]
    din = shape[-1]
    variables = {"x": rng.standard_normal(shape), "w": rng.standard_normal((din, dout)) / math.sqrt(din)}
    if bias:
        variables["b"] = rng.standard_normal(dout)
    r = rng.standard_normal(shape[:-1] + (dout,))
    return Problem(
        f"linear of x {shape}, w {(din, dout)}{', b' if bias else ''}",
        variables,
        lambda be, p, dtype: contract(be, [be.linear(p["x"], p["w"], p.get("b"))], [r], dtype),
    )


def _norm(method: str) -> Builder:
    def build(rng: np.random.Generator, variant: int) -> Problem:
        shape = ((8,), (2, 5, 4))[variant]
        D = shape[-1]
        variables = {
            "x": rng.standard_normal(shape) * 2 + rng.standard_normal(shape[:-1] + (1,)),
            "w": 1 + 0.3 * rng.standard_normal(D),
        }
        if method == "layer_norm" and variant == 0:
            variables["b"] = rng.standard_normal(D)
        r = rng.standard_normal(shape)

        def program(be: Any, p: dict[str, Any], dtype: str) -> Any:
            out = be.layer_norm(p["x"], p["w"], p.get("b"), 1e-5) if method == "layer_norm" else be.rms_norm(p["x"], p["w"], 1e-6)
            return contract(be, [out], [r], dtype)

        return Problem(f"{method} of x {shape}{', b' if 'b' in variables else ''}", variables, program)

    return build


def _embedding(rng: np.random.Generator, variant: int) -> Problem:
    (V, D), ids_shape = (((7, 4), (5,)), ((3, 8), (2, 5)))[variant]
    ids = rng.integers(0, V, size=ids_shape)  # 10 ids from 3 rows: repeated ids, whose gradients add up
    r = rng.standard_normal(ids.shape + (D,))
    return Problem(
        f"embedding of table {(V, D)} at ids {ids.shape}",
        {"table": rng.standard_normal((V, D))},
        lambda be, p, dtype: contract(be, [be.embedding(p["table"], be.asarray(ids, "int64"))], [r], dtype),
    )


def _learned_positions(rng: np.random.Generator, variant: int) -> Problem:
    (C, D), length, offset = (((8, 4), 5, 0), ((8, 4), 1, 6))[variant]
    r = rng.standard_normal((length, D))
    return Problem(
        f"learned_positions of table {(C, D)}, rows {offset}..{offset + length - 1}",
        {"table": rng.standard_normal((C, D))},
        lambda be, p, dtype: contract(be, [be.learned_positions(p["table"], length, offset)], [r], dtype),
    )


def _rotary(rng: np.random.Generator, variant: int) -> Problem:
    shape = ((5, 8), (2, 3, 5, 4))[variant]
    positions = np.arange(shape[-2]) + int(rng.integers(0, 100))
    r = rng.standard_normal(shape)
    return Problem(
        f"rotary of x {shape} at positions {positions[0]}..{positions[-1]}",
        {"x": rng.standard_normal(shape)},
        lambda be, p, dtype: contract(be, [be.rotary(p["x"], be.asarray(positions, "int64"))], [r], dtype),
    )


def _attention(need_weights: bool) -> Builder:
    def build(rng: np.random.Generator, variant: int) -> Problem:
        # variant 0: plain softmax attention; 1: batched, 3 queries over 5 keys, causal, a random mask with one
        # query that may attend to nothing (zero output, zero gradient).
        batch, L, S, Dh, causal = (((), 5, 5, 4, False), ((2,), 3, 5, 4, True))[variant]
        mask = None
        if variant == 1:
            mask = rng.random((L, S)) < 0.7
            mask[int(rng.integers(0, L))] = False
        variables = {
            "q": rng.standard_normal(batch + (L, Dh)),
            "k": rng.standard_normal(batch + (S, Dh)),
            "v": rng.standard_normal(batch + (S, Dh)),
        }
        r_out, r_weights = rng.standard_normal(batch + (L, Dh)), rng.standard_normal(batch + (L, S))

        def program(be: Any, p: dict[str, Any], dtype: str) -> Any:
            native_mask = None if mask is None else be.asarray(mask, "bool")
            out, weights = be.attention(p["q"], p["k"], p["v"], mask=native_mask, causal=causal, need_weights=need_weights)
            if need_weights:
                return contract(be, [out, weights], [r_out, r_weights], dtype)
            return contract(be, [out], [r_out], dtype)

        path = "weights path" if need_weights else "fast path (need_weights=False)"
        return Problem(
            f"attention, {path}, q {batch + (L, Dh)}, S={S}, causal={causal}, mask={'none' if mask is None else 'random'}",
            variables,
            program,
        )

    return build


def _cross_entropy(rng: np.random.Generator, variant: int) -> Problem:
    shape, V = (((5,), 7), ((2, 5), 2))[variant]
    targets = np.where(rng.random(shape) < 0.3, IGNORE, rng.integers(0, V, size=shape))
    return Problem(
        f"cross_entropy of logits {shape + (V,)} with {int((targets == IGNORE).sum())} of {targets.size} targets ignored",
        {"logits": rng.standard_normal(shape + (V,)) * 2},
        lambda be, p, dtype: be.cross_entropy(p["logits"], be.asarray(targets, "int64")),
    )


PRIMITIVE_PROBLEMS: dict[str, Builder] = {
    "softmax": _softmax("softmax"),
    "log_softmax": _softmax("log_softmax"),
    "relu": _elementwise("relu"),
    "gelu_tanh": _elementwise("gelu", approximate=True),
    "gelu_exact": _elementwise("gelu", approximate=False),
    "silu": _elementwise("silu"),
    "linear": _linear,
    "layer_norm": _norm("layer_norm"),
    "rms_norm": _norm("rms_norm"),
    "embedding": _embedding,
    "learned_positions": _learned_positions,
    "rotary": _rotary,
    "attention": _attention(True),
    "attention_fast_path": _attention(False),
    "cross_entropy": _cross_entropy,
}


def primitive_problem(name: str, seed: int) -> Problem:
    """The problem for primitive ``name`` (a key of PRIMITIVE_PROBLEMS): variant ``seed % 2``, values from ``seed``."""
    return PRIMITIVE_PROBLEMS[name](np.random.default_rng([seed, list(PRIMITIVE_PROBLEMS).index(name)]), seed % VARIANTS)


# ---------------------------------------------------------------------- problems: composites

COMPOSITES = ("multihead_attention", "feed_forward", "block", "model_loss")


def composite_problem(name: str, config: ModelConfig, seed: int) -> Problem:
    """The problem for composite ``name`` (one of COMPOSITES) of a model ``config``, rebuilt exactly from ``seed``."""
    rng = np.random.default_rng([seed, COMPOSITES.index(name)])
    params = cs.model_parameters(config, seed)
    B, L = ((1, 5), (2, 3))[seed % VARIANTS]
    if name == "model_loss":
        ids = rng.integers(0, config.vocab_size, size=(B, L))
        targets = np.where(rng.random((B, L)) < 0.2, IGNORE, rng.integers(0, config.vocab_size, size=(B, L)))

        def program(be: Any, p: dict[str, Any], dtype: str) -> Any:
            logits, _ = be.model_forward(p, config, be.asarray(ids, "int64"))
            return be.cross_entropy(logits, be.asarray(targets, "int64"))

        return Problem(f"cross_entropy(model_forward(params, ids {ids.shape})) of {config}", params, program)
    prefix = {"multihead_attention": "blocks.0.attn.", "feed_forward": "blocks.0.mlp.", "block": "blocks.0."}[name]
    variables = {k: v for k, v in params.items() if k.startswith(prefix)}
    variables["x"] = rng.standard_normal((B, L, config.d_model))
    r = rng.standard_normal((B, L, config.d_model))

    def program(be: Any, p: dict[str, Any], dtype: str) -> Any:
        weights = {k: v for k, v in p.items() if k != "x"}
        if name == "feed_forward":
            out = be.feed_forward(weights, config, p["x"], prefix=prefix)
        else:
            out = getattr(be, name)(weights, config, p["x"], prefix=prefix)[0]
        return contract(be, [out], [r], dtype)

    return Problem(
        f"{name} of x {(B, L, config.d_model)} ({config.positional}, {config.norm}, {config.activation}, bias={config.bias})",
        variables,
        program,
    )


# ---------------------------------------------------------------------- the comparison


@dataclass
class DirectionalDerivative:
    by_autodiff: float  # <grad f, v> from value_and_grad
    by_differences: float  # Richardson-extrapolated central difference along v
    gradient_norm: float  # |grad f|_2 over all variables
    allowed: float

    @property
    def error(self) -> float:
        return abs(self.by_autodiff - self.by_differences)

    @property
    def ok(self) -> bool:
        return bool(self.error <= self.allowed)  # False for NaN


@dataclass
class GradientComparison:
    label: str
    value: float
    directions: list[DirectionalDerivative] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(d.ok for d in self.directions)

    @property
    def worst(self) -> DirectionalDerivative:
        return max(self.directions, key=lambda d: d.error / d.allowed if d.ok else math.inf)

    def describe(self) -> str:
        d = self.worst
        return (
            f"{self.label}: along a random unit direction v, <grad f, v> = {d.by_autodiff!r} by value_and_grad but "
            f"{d.by_differences!r} by float64 central differences (error {d.error:.3g}, allowed {d.allowed:.3g}; "
            f"|grad f| = {d.gradient_norm:.3g})"
        )


def _scalar(be: Any, value: Any) -> float:
    return float(np.asarray(be.to_numpy(value), dtype=np.float64).reshape(()))


def check_directional_derivatives(
    be: Any,
    problem: Problem,
    seed: int,
    dtype: str = "float64",
    directions: int = DIRECTIONS_PER_EXAMPLE,
    step: float = FINITE_DIFFERENCE_STEP,
) -> GradientComparison:
    """Compare ``value_and_grad`` of ``problem`` with Richardson-extrapolated central differences along random directions.

    Everything is computed by ``be`` in ``dtype`` (float64 for a meaningful comparison). The directions are drawn
    from ``seed``; see :mod:`transformer_spec.spec.gradients` for the test and its tolerance.
    """
    names = list(problem.variables)
    native = {k: be.asarray(v, dtype) for k, v in problem.variables.items()}
    value, grads = be.value_and_grad(lambda p: problem.program(be, p, dtype))(native)
    missing = [k for k in names if k not in grads]
    if missing:
        raise InvariantViolation(f"{problem.label}: value_and_grad returned no gradient for {missing}")
    gradient = {k: np.asarray(be.to_numpy(grads[k]), dtype=np.float64) for k in names}
    for k in names:
        if gradient[k].shape != problem.variables[k].shape:
            raise InvariantViolation(
                f"{problem.label}: the gradient of {k!r} has shape {gradient[k].shape}, expected {problem.variables[k].shape}"
            )
    norm = math.sqrt(sum(float(np.sum(g * g)) for g in gradient.values()))

    def f(v: dict[str, np.ndarray], h: float) -> float:
        moved = {k: be.asarray(problem.variables[k] + h * v[k], dtype) for k in names}
        return _scalar(be, problem.program(be, moved, dtype))

    rng = np.random.default_rng(seed)
    comparison = GradientComparison(problem.label, _scalar(be, value))
    tol = FINITE_DIFFERENCE_TOLERANCE
    for _ in range(directions):
        v = {k: rng.standard_normal(problem.variables[k].shape) for k in names}
        length = math.sqrt(sum(float(np.sum(a * a)) for a in v.values()))
        v = {k: a / length for k, a in v.items()}  # one unit vector over all variables together
        d1 = (f(v, step) - f(v, -step)) / (2 * step)
        d2 = (f(v, 2 * step) - f(v, -2 * step)) / (4 * step)
        extrapolated = (4 * d1 - d2) / 3  # the h^2 error terms cancel
        by_autodiff = sum(float(np.sum(gradient[k] * v[k])) for k in names)
        comparison.directions.append(
            DirectionalDerivative(by_autodiff, extrapolated, norm, tol.atol + tol.rtol * (norm + abs(extrapolated)))
        )
    return comparison


def _run_directional(case: Case, problem: Problem, build_call: str, seed: int) -> None:
    """Run one comparison; on failure the repro is the one call that redoes it."""
    if "import transformer_spec.conformance.components.gradients as G" not in case.setup:
        case.setup.append("import transformer_spec.conformance.components.gradients as G")
    case.calls.append(f"result = G.check_directional_derivatives(be, {build_call}, seed={seed})")
    case.calls.append("ok, description = result.ok, result.describe()")
    result = check_directional_derivatives(case.be, problem, seed)
    if not result.ok:
        case.fail(result.describe())


# ---------------------------------------------------------------------- checks


# softmax's own shapes (along the last axis): the forward programs are those of the softmax checks.
@check("gradients.declared_autodiff_works", dtypes=FLOAT, examples_factor=0.5, cover=cs.covering(shape=SOFTMAX_SHAPES))
def declared_autodiff_works(case: Case) -> None:
    require_autodiff(case.be)
    be, dtype = case.be, case.dtype
    shape = case.draw(st.sampled_from(SOFTMAX_SHAPES), "shape")
    x = case.draw(cs.float_arrays(shape, dtype, ("normal",)), "x")
    r = case.rounded(np.random.default_rng(case.draw(st.integers(0, 2**16), "r_seed")).standard_normal(shape))
    params = {"x": case.array("x", x), "unused": case.array("unused", np.ones((2, 3)))}
    before = {k: case.numpy(v).copy() for k, v in params.items()}

    def fn(p: dict[str, Any]) -> Any:
        return contract(be, [be.softmax(p["x"])], [r], dtype)

    case.note("r", r)
    case.setup.append("import transformer_spec.conformance.components.gradients as G")
    case.calls.append(
        f"value, grads = be.value_and_grad(lambda p: G.contract(be, [be.softmax(p['x'])], [r], {dtype!r}))({{'x': x_, 'unused': unused_}})"
    )
    try:
        value, grads = be.value_and_grad(fn)(params)
    except NotImplementedError as error:
        case.fail(f"supports_autodiff is True but value_and_grad raised NotImplementedError: {error}")
    case.require(
        isinstance(grads, dict), f"value_and_grad returned grads of type {type(grads).__name__}, expected a dict like params"
    )
    case.require(
        set(grads) == set(params), f"value_and_grad returned gradients for {sorted(grads)}, expected exactly {sorted(params)}"
    )
    for name, p in params.items():
        g = grads[name]
        case.require(
            isinstance(g, be.array_type),
            f"the gradient of {name!r} is a {type(g).__name__}, expected a native array of the backend",
        )
        case.require(
            tuple(g.shape) == tuple(p.shape), f"the gradient of {name!r} has shape {tuple(g.shape)}, expected {tuple(p.shape)}"
        )
        case.require(
            be.dtype_of(g) == dtype, f"the gradient of {name!r} has dtype {be.dtype_of(g)}, expected {dtype} like the parameter"
        )
    case.require(
        bool(np.all(case.numpy(grads["unused"]) == 0)), "a parameter fn does not use got a non-zero gradient, expected zeros"
    )
    direct = _scalar(be, fn(params))
    case.assert_close(
        np.array(_scalar(be, value)),
        np.array(direct),
        "the value returned by value_and_grad vs fn(params)",
        magnitude=np.array(max(1.0, float(np.abs(r).sum()))),
    )
    # d/dx sum(softmax(x) * r) = p * (r - sum(p * r)) along the last axis: a closed form in float64.
    p = ref.softmax(case.rounded(x))
    expected = p * (r - np.sum(p * r, axis=-1, keepdims=True))
    case.assert_close(
        case.numpy(grads["x"]),
        expected,
        "the gradient of sum(softmax(x) * r)",
        magnitude=np.broadcast_to(np.maximum(np.abs(r).max(axis=-1, keepdims=True), 1.0), expected.shape),
    )
    for name, v in params.items():
        case.require(
            np.array_equal(case.numpy(v), before[name], equal_nan=True), f"value_and_grad modified the caller's params[{name!r}]"
        )


def _draw_seed(case: Case) -> int:
    """A problem seed: its variant (``seed % VARIANTS``, the shapes: a program) is pinned, the rest (values) is not."""
    variant = case.draw(st.sampled_from(range(VARIANTS)), "variant")
    return case.draw(st.integers(0, 2**31 - 1), "values_seed") * VARIANTS + variant


@check(
    "gradients.primitives_match_finite_differences",
    dtypes=FLOAT,
    examples_factor=0.5,
    cover=cs.covering(variant=tuple(range(VARIANTS))),
)
def primitives_match_finite_differences(case: Case) -> None:
    require_float64(case)
    seed = _draw_seed(case)
    for name in PRIMITIVE_PROBLEMS:
        _run_directional(case, primitive_problem(name, seed), f"G.primitive_problem({name!r}, {seed})", seed)
        case.calls.clear()  # the repro redoes only the primitive that failed


def composite_cover() -> list[dict[str, Any]]:
    """Every config of the model covering pool once, with the two call shapes (variants) in turn: each config
    and each shape is differentiated on every run, and exploring only draws new values for these programs."""
    return [{"config": config, "variant": i % VARIANTS} for i, config in enumerate(cs.config_pool())]


composite_cover.pinned = ("config", "variant")  # type: ignore[attr-defined]  (both choose the program)


@check("gradients.composites_match_finite_differences", dtypes=FLOAT, examples_factor=0.25, cover=composite_cover)
def composites_match_finite_differences(case: Case) -> None:
    require_float64(case)
    config = case.draw(cs.model_configs(max_layers=2), "config")
    seed = _draw_seed(case)
    for name in COMPOSITES:
        _run_directional(case, composite_problem(name, config, seed), f"G.composite_problem({name!r}, config, {seed})", seed)
        case.calls.clear()


def _draw_loss_problem(case: Case, ignore_fractions: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    shape = case.draw(cs.batch_shapes(), "batch") + (case.draw(cs.lengths(), "L"),)
    V = case.draw(st.sampled_from((2, 3, 7, 16)), "V")
    logits = case.draw(cs.float_arrays(shape + (V,), case.dtype, ("normal", "wide", "ties")), "logits")
    rng = np.random.default_rng(case.draw(st.integers(0, 2**16), "target_seed"))
    fraction = case.draw(st.sampled_from(ignore_fractions), "ignore_fraction")
    targets = np.where(rng.random(shape) < fraction, IGNORE, rng.integers(0, V, size=shape))
    case.note("targets", targets)
    return logits, targets


def _loss_gradient(case: Case, logits: np.ndarray, targets: np.ndarray) -> tuple[float, np.ndarray]:
    be = case.be
    native_targets = case.array("targets", targets, "int64")
    case.calls.append("value, grads = be.value_and_grad(lambda p: be.cross_entropy(p['logits'], targets_))({'logits': logits_})")
    value, grads = be.value_and_grad(lambda p: be.cross_entropy(p["logits"], native_targets))(
        {"logits": case.array("logits", logits)}
    )
    return _scalar(be, value), case.numpy(grads["logits"])


@check(
    "gradients.cross_entropy_gradient_closed_form",
    dtypes=FLOAT,
    examples_factor=0.5,
    cover=cs.covering(ignore_fraction=(0.0, 0.3), L=cs.LENGTHS),
)
def cross_entropy_gradient_closed_form(case: Case) -> None:
    require_autodiff(case.be)
    logits, targets = _draw_loss_problem(case, (0.0, 0.3))
    _, got = _loss_gradient(case, logits, targets)
    keep = targets != IGNORE
    M = max(int(keep.sum()), 1)
    expected = ref.softmax(case.rounded(logits)) / M
    expected[keep, targets[keep]] -= 1.0 / M
    expected[~keep] = 0.0
    case.assert_close(
        got, expected, f"d mean cross_entropy / d logits over {M} kept rows", magnitude=np.full(expected.shape, 1.0 / M)
    )


@check(
    "gradients.loss_gradient_ignores_ignored_targets",
    dtypes=FLOAT,
    examples_factor=0.5,
    cover=cs.covering(ignore_fraction=(0.3, 0.7, 1.0), L=cs.LENGTHS),  # 1.0: every target ignored, on every seed
)
def loss_gradient_ignores_ignored_targets(case: Case) -> None:
    require_autodiff(case.be)
    logits, targets = _draw_loss_problem(case, (0.3, 0.7, 1.0))
    value, got = _loss_gradient(case, logits, targets)
    ignored = targets == IGNORE
    case.require(
        bool(np.all(np.isfinite(got))),
        "the gradient of cross_entropy is not finite, expected finite values (zeros on ignored rows)",
    )
    if not np.all(got[ignored] == 0):
        case.fail(
            f"rows with an ignored target got non-zero gradient (max |g| = {float(np.abs(got[ignored]).max()):.3g}), expected exactly 0"
        )
    if ignored.all():
        case.require(value == 0.0, f"with every target ignored the loss is {value!r}, expected 0")
        # And through a whole model: every parameter's gradient is zero, not NaN.
        be = case.be
        config = case.note("config", ModelConfig(vocab_size=16, context_length=16, d_model=8, n_heads=2, n_layers=1, d_ff=16))
        params = case.params("params", cs.model_parameters(config, 0), cs.MODEL_PARAMETERS_RECIPE.format(config=config, seed=0))
        ids = case.array("ids", np.arange(8).reshape(1, 8), "int64")
        all_ignored = case.array("all_ignored", np.full((1, 8), IGNORE), "int64")
        case.calls.append(
            "value, grads = be.value_and_grad(lambda p: be.cross_entropy(be.model_forward(p, config, ids_)[0], all_ignored_))(params_)"
        )
        model_value, grads = be.value_and_grad(lambda p: be.cross_entropy(be.model_forward(p, config, ids)[0], all_ignored))(
            params
        )
        case.require(
            _scalar(be, model_value) == 0.0, f"a model loss with every target ignored is {_scalar(be, model_value)!r}, expected 0"
        )
        bad = [k for k, g in grads.items() if not np.all(case.numpy(g) == 0)]
        case.require(not bad, f"with every target ignored, parameters {bad[:4]} got non-zero (or NaN) gradients, expected zeros")
