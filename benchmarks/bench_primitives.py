"""Time of each primitive at a representative size, per backend, relative to the NumPy reference.

    python -m benchmarks.bench_primitives [--backends numpy,torch,jax] [--out FILE]

Sizes are those of one GPT-2-small layer on a 128-token sequence (D=768, H=12,
F=3072), float32, batch 1. Native arrays are prepared once; the time is per call,
including the argument checks of the public method, and, for JAX, waiting for
the result (``block_until_ready``).
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from transformer_spec.backends import available_backends, load_backend

from ._common import best_of, write_results

L, D, H, F, V = 128, 768, 12, 3072, 50257


def cases(rng: np.random.Generator) -> dict[str, tuple[str, tuple, dict]]:
    """name -> (method, NumPy args, kwargs)."""
    x = rng.standard_normal((1, L, D)).astype(np.float32)
    q = rng.standard_normal((1, H, L, D // H)).astype(np.float32)
    return {
        "softmax (1,128,768)": ("softmax", (x,), {}),
        "gelu tanh (1,128,3072)": ("gelu", (rng.standard_normal((1, L, F)).astype(np.float32),), {"approximate": True}),
        "linear 768→3072": ("linear", (x, rng.standard_normal((D, F)).astype(np.float32) * 0.02, np.zeros(F, np.float32)), {}),
        "layer_norm (1,128,768)": ("layer_norm", (x, np.ones(D, np.float32), np.zeros(D, np.float32)), {}),
        "embedding 128 of 50257": ("embedding", (rng.standard_normal((V, D)).astype(np.float32), rng.integers(0, V, (1, L))), {}),
        "rotary (1,12,128,64)": ("rotary", (q, np.arange(L)), {}),
        "attention causal (1,12,128,64)": ("attention", (q, q, q), {"causal": True}),
        "cross_entropy (128, 50257)": (
            "cross_entropy",
            (rng.standard_normal((L, V)).astype(np.float32), rng.integers(0, V, (L,))),
            {},
        ),
        "sample top-k 50 (50257,)": ("sample", (rng.standard_normal(V).astype(np.float32), 0.5), {"top_k": 50}),
    }


def convert(backend, value):
    if isinstance(value, np.ndarray):
        return backend.asarray(value, "float32" if value.dtype.kind == "f" else "int64")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default=",".join(b for b in available_backends() if b in ("numpy", "torch", "jax")))
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    names = args.backends.split(",")
    table: dict[str, dict[str, float]] = {}
    for name in names:
        backend = load_backend(name)
        sync = getattr(backend, "block_until_ready", None) or (lambda out: out)
        for label, (method, np_args, kwargs) in cases(np.random.default_rng(0)).items():
            native = tuple(convert(backend, a) for a in np_args)
            fn = getattr(backend, method)
            table.setdefault(label, {})[name] = best_of(lambda: sync(fn(*native, **kwargs)))
    header = (
        f"{'primitive':<32}"
        + "".join(f"{n + ' ms':>12}" for n in names)
        + "".join(f"{n + '/numpy':>14}" for n in names if n != "numpy")
    )
    print(header)
    for label, times in table.items():
        row = f"{label:<32}" + "".join(f"{times[n] * 1e3:>12.3f}" for n in names)
        row += "".join(f"{times[n] / times['numpy']:>14.2f}" for n in names if n != "numpy" and "numpy" in times)
        print(row)
    path = write_results("primitives", {"seconds": table}, args.out)
    print(f"written to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
