"""Measure how far real backends' elementwise primitives are from the float64 reference, in float ulps.

The ``elementwise`` rows of the tolerance table (:mod:`transformer_spec.spec.tolerances`)
are calibrated with this module: for each primitive and dtype it evaluates a fixed
sample of inputs spread over many decades (the regimes the checks draw, plus a dense
grid around the activations' bends) and reports the worst error in units of
``eps(dtype) * magnitude``, where the magnitude is the one the checks compare against
(``max(|f(x)|, 1.13 |x|)``: the output's size, or what an input rounding of |x|·eps can
move it by). ``tests/test_tolerances.py`` re-measures NumPy, PyTorch and JAX and fails
when any comes within the table's stated margin.

    python -m transformer_spec.conformance.calibration [--backends numpy,torch,jax] [--dtypes float32,float16,bfloat16]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from transformer_spec.spec.tolerances import EPSILON, TINIEST

from . import reference as ref

# (method, keyword arguments, float64 reference)
ELEMENTWISE = {
    "relu": ("relu", {}, ref.relu),
    "gelu_tanh": ("gelu", {"approximate": True}, lambda x: ref.gelu(x, approximate=True)),
    "gelu": ("gelu", {"approximate": False}, lambda x: ref.gelu(x, approximate=False)),
    "silu": ("silu", {}, ref.silu),
}


def magnitude(x: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """The scale an elementwise result is compared at (the same as the activation checks')."""
    return np.maximum(np.abs(expected), 1.13 * np.abs(x))


def calibration_inputs(dtype: str, seed: int = 0, size: int = 4096) -> np.ndarray:
    """A fixed sample: normal values, six decades of magnitudes, a dense grid over [-8, 8], tiny values, zeros."""
    rng = np.random.default_rng(seed)
    high = 1.5 if dtype == "float16" else 3.0
    parts = [
        rng.standard_normal(size),
        rng.standard_normal(size) * 10.0 ** rng.uniform(-3.0, high, size),
        np.linspace(-8.0, 8.0, size),
        rng.standard_normal(64) * (1e-3 if dtype == "float16" else 1e-30),
        np.zeros(8),
    ]
    return np.concatenate(parts)


def worst_ulps(backend, method: str, kwargs: dict, reference, dtype: str, seed: int = 0) -> float:
    """max |got - expected| / (eps(dtype) * magnitude) over the calibration inputs, rounded to ``dtype`` first."""
    x = calibration_inputs(dtype, seed)
    native = backend.asarray(x, dtype)
    xr = np.asarray(backend.to_numpy(native), dtype=np.float64)
    got = np.asarray(backend.to_numpy(getattr(backend, method)(native, **kwargs)), dtype=np.float64)
    expected = reference(xr)
    excess = np.maximum(np.abs(got - expected) - TINIEST[dtype], 0.0)
    return float(np.max(excess / (EPSILON[dtype] * np.maximum(magnitude(xr, expected), TINIEST[dtype]))))


def measure(backends: list[str], dtypes: list[str]) -> dict[tuple[str, str, str], float]:
    """(backend, dtype, primitive) -> worst error in ulps; dtypes a backend does not support are left out."""
    from transformer_spec.backends import load_backend

    out = {}
    for name in backends:
        backend = load_backend(name)
        for dtype in dtypes:
            if dtype not in backend.dtypes:
                continue
            for primitive, (method, kwargs, reference) in ELEMENTWISE.items():
                out[(name, dtype, primitive)] = worst_ulps(backend, method, kwargs, reference, dtype)
    return out


def main(argv: list[str] | None = None) -> int:
    from transformer_spec.backends import available_backends

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(b for b in ("numpy", "torch", "jax") if b in available_backends()))
    parser.add_argument("--dtypes", default="float32,float64,float16,bfloat16")
    args = parser.parse_args(argv)
    results = measure(args.backends.split(","), args.dtypes.split(","))
    print(f"{'backend':<8}{'dtype':<10}{'primitive':<11}{'worst ulps':>11}")
    for (name, dtype, primitive), ulps in sorted(results.items()):
        print(f"{name:<8}{dtype:<10}{primitive:<11}{ulps:>11.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
