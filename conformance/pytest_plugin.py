"""pytest integration: ``pytest --pyargs transformer_spec.conformance --backend=NAME [--dtype=float32,float64]``.

Each (invariant, dtype) pair becomes one test item named by the invariant id,
so pytest's own ``-k``, ``-x`` and reports work as usual.
"""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("transformer-spec", "transformer-spec conformance suite")
    group.addoption(
        "--backend", default=None, help="backend to check: numpy, torch, jax, module:attribute (default $TSPEC_BACKEND or numpy)"
    )
    group.addoption("--dtype", default="float32", help="comma-separated float dtypes to check (default float32)")
    group.addoption("--conformance-profile", default=None, help="dev, ci or thorough (default $TSPEC_PROFILE or dev)")
    group.addoption("--xfails", default=None, help="file of invariant ids expected to fail")
    group.addoption("--conformance-seed", type=int, default=None, help="Hypothesis seed for every check")


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "conformance_target" not in metafunc.fixturenames:
        return
    from .registry import ANY, BACKEND, load_all_checks

    dtypes = [d.strip() for d in metafunc.config.getoption("--dtype").split(",") if d.strip()]
    targets = []
    for check in load_all_checks(BACKEND).values():  # tokenizer checks: tspec conformance --tokenizer
        for dtype in dtypes[:1] if check.dtypes == ANY else dtypes:
            targets.append(pytest.param((check.id, dtype), id=f"{check.id}[{dtype}]"))
    metafunc.parametrize("conformance_target", targets)


@pytest.fixture(scope="session")
def conformance_backend(pytestconfig: pytest.Config):
    from transformer_spec.backends import load_backend

    from .runner import check_signature, enable_jax_cache

    name = pytestconfig.getoption("--backend") or os.environ.get("TSPEC_BACKEND", "numpy")
    backend = load_backend(name)
    missing = check_signature(backend)
    if missing:
        pytest.exit(f"backend {backend.name!r} is missing kernels: {', '.join(missing)}", returncode=2)
    enable_jax_cache(backend)  # compiled programs kept between runs, as with tspec conformance
    return name, backend


@pytest.fixture(scope="session")
def conformance_options(pytestconfig: pytest.Config) -> dict:
    from .runner import default_profile, parse_xfails

    xfails_path = pytestconfig.getoption("--xfails")
    seed = pytestconfig.getoption("--conformance-seed")
    return {
        "profile": pytestconfig.getoption("--conformance-profile") or default_profile(),
        "xfails": parse_xfails(xfails_path) if xfails_path else set(),
        "seed": seed if seed is not None else int.from_bytes(os.urandom(4), "little"),
    }
