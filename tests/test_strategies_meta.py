"""Meta-tests of the strategies and covering sets (in the spirit of the Array API suite's meta_tests/):
a ModelConfig field or allowed value that no strategy draws fails here, and every covering set covers
every pair of its options."""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from transformer_spec.conformance import strategies as cs
from transformer_spec.conformance.case import Case
from transformer_spec.conformance.registry import load_all_checks
from transformer_spec.spec import config as spec_config
from transformer_spec.spec.config import ModelConfig


def _uncovered_pairs(dimensions: dict, rows: list[dict]) -> list:
    missing = []
    for (a, va), (b, vb) in itertools.combinations(dimensions.items(), 2):
        for x, y in itertools.product(va, vb):
            if not any(row[a] == x and row[b] == y for row in rows):
                missing.append((a, x, b, y))
    return missing


def test_every_config_field_and_value_is_drawn():
    assert cs.config_coverage_gaps() == []
    assert set(cs.config_dimensions()) == {f.name for f in dataclasses.fields(ModelConfig)}


def test_allowed_values_come_from_spec():
    for name, values in spec_config.FIELD_CHOICES.items():
        assert cs.config_dimensions()[name] == tuple(values)


def test_a_new_field_that_no_strategy_draws_fails():
    extended = dataclasses.make_dataclass(
        "Extended", [("sliding_window", int, dataclasses.field(default=0))], bases=(ModelConfig,), frozen=True
    )
    gaps = cs.config_coverage_gaps(extended)
    assert any("sliding_window has no dimension" in gap for gap in gaps), gaps


def test_a_new_allowed_value_that_no_strategy_draws_fails(monkeypatch):
    pool = cs.config_pool()  # drawn before the spec grew a value
    monkeypatch.setitem(spec_config.FIELD_CHOICES, "norm", (*spec_config.FIELD_CHOICES["norm"], "scale_norm"))
    gaps = cs.config_coverage_gaps(pool=pool)
    assert any("norm = 'scale_norm' is allowed but never drawn" in gap for gap in gaps), gaps


@pytest.mark.parametrize(
    "dimensions",
    [
        {"a": (1, 2, 3), "b": (True, False), "c": ("x", "y", "z", "w"), "d": (None, 0.5)},
        {"only": (1, 2, 3)},
        {"a": (1, 2), "b": (3, 4)},
        {f"d{i}": tuple(range(i % 4 + 1)) for i in range(9)},
    ],
)
def test_pairwise_covers_every_pair(dimensions):
    rows = cs.pairwise(dimensions)
    assert _uncovered_pairs(dimensions, rows) == []
    assert all(set(row) == set(dimensions) for row in rows)
    assert cs.pairwise(dimensions) == rows  # deterministic: never depends on a seed


def test_model_covering_set_covers_every_pair_of_config_values_and_call_options():
    dims = {**cs.config_dimensions(), **cs.MODEL_CALL_DIMENSIONS}
    rows = cs.model_cover_choices()
    assert _uncovered_pairs(dims, rows) == []
    built = [cs.build_config({k: v for k, v in row.items() if k in cs.config_dimensions()}) for row in rows]
    assert built == [row["config"] for row in cs.model_cover()]
    # The shape coincidence and the rare combinations of issue 10 are in it.
    configs = [r["config"] for r in cs.model_cover()]
    assert any(c.vocab_size == c.d_model and c.tie_embeddings for c in configs)
    assert any(r["split"] == "two_chunks" and r["L"] > 2 for r in cs.model_cover())
    assert {r["B"] for r in cs.model_cover()} >= {1, 2}


def _drawn_names(check, backend, row: dict) -> set[str]:
    seen: dict = {}

    @settings(max_examples=1, database=None, deadline=None)
    @given(st.data())
    def once(data):
        case = Case(backend, "float64", data.draw, forced=row)
        try:
            check.fn(case)
        finally:
            seen.update(case.inputs)

    once()
    return set(seen)


def test_every_covering_set_covers_its_pairs_and_every_forced_draw_is_drawn():
    """A covering row whose name the check never draws would be silently ignored: each name must be drawn
    by at least one row of the check (``split`` only by the model's cached check)."""
    from transformer_spec.backends import available_backends, load_backend

    numpy_backend = load_backend("numpy")
    autodiff = load_backend("torch") if "torch" in available_backends() else None
    for check in load_all_checks().values():
        if check.cover is None:
            continue
        backend = autodiff if check.component == "gradients" else numpy_backend
        if backend is None:
            continue  # the gradient checks need a backend that differentiates
        rows = check.cover()
        dims = getattr(check.cover, "dimensions", None)
        if dims is not None:
            assert _uncovered_pairs(dims, rows) == [], check.id
        drawn: set[str] = set()
        for row in rows[:12]:
            drawn |= _drawn_names(check, backend, row)
        # split: how the model's own cache is fed (the layer checks split their growing ``past`` their own way)
        expected = set().union(*rows) - ({"split"} if check.id != "model.cached_equals_full" else set())
        assert expected <= drawn, f"{check.id}: covering names never drawn: {sorted(expected - drawn)}"


def test_options_of_every_function_are_in_a_covering_set():
    """mask or none, causal or not, scale None or explicit, top_k / top_p / both / neither, one-token and
    multi-token cached chunks, batch 1 and > 1, odd lengths."""
    checks = load_all_checks()

    def values(check_id: str, name: str) -> set:
        return {repr(row[name]) for row in checks[check_id].cover() if name in row}

    assert values("attention.matches_reference", "with_mask") == {"False", "True"}
    assert values("attention.matches_reference", "causal") == {"False", "True"}
    assert values("attention.matches_reference", "scale") >= {"None", "0.5"}
    assert values("sampling.matches_reference", "filters") == {"'neither'", "'top_k'", "'top_p'", "'both'"}
    assert values("model.cached_equals_full", "split") == {repr(s) for s in cs.SPLITS}
    assert values("model.matches_reference", "B") == {"1", "2"}
    assert any(int(v) % 2 for v in values("model.matches_reference", "L"))
    assert values("softmax.sums_to_one", "axis") == {"-1", "0"}


# ---------------------------------------------------------------- bounded compilation
#
# In the dev and ci profiles Hypothesis explores values on the programs of the covering set, so the
# number of distinct call signatures (what a compiler compiles) is fixed by the covering sets: it does
# not grow with the profile's example count or depend on the seed. A check whose exploration meets a
# signature its covering set never did has a draw that changes shapes or static arguments outside its
# cover; pin it there.


def _explored_leaks(backend_name: str, seed: int, subject_filter=lambda check: True) -> dict[str, int]:
    from transformer_spec.backends import load_backend
    from transformer_spec.conformance import runner

    backend = load_backend(backend_name)
    leaks = {}
    for check in load_all_checks("backend").values():
        if not subject_filter(check):
            continue
        result = runner.run_check(check, backend, "float32", "dev", seed, backend_name)
        assert result.status in ("passed", "skipped"), (check.id, result.message)
        if result.explored_signatures:
            leaks[check.id] = result.explored_signatures
    return leaks


@pytest.mark.parametrize("seed", [0, 1])
def test_exploring_compiles_nothing_the_covering_set_did_not(seed):
    assert _explored_leaks("numpy", seed) == {}


def test_gradient_checks_explore_only_covered_programs():
    pytest.importorskip("torch")  # NumPy has no autodiff: the gradient checks run on PyTorch
    assert _explored_leaks("torch", 0, lambda check: check.component == "gradients") == {}


def test_signatures_are_the_same_in_dev_and_ci():
    from transformer_spec.conformance import runner

    counts = {profile: runner.run("numpy", profile=profile, seed=3, timeout=None).signatures for profile in ("dev", "ci")}
    assert counts["dev"] == counts["ci"], counts


# ---------------------------------------------------------------- what a layer reads
#
# A layer's checks vary only the config fields its spec component says it reads (``config_fields``);
# the others keep one value. That is sound only if the layer's output really depends on no other
# field: changing any of them, on every configuration of its covering set, leaves the reference's
# output and the NumPy backend's (the shared model) unchanged, bit for bit.

LAYERS = {
    "feedforward": ("feed_forward", "blocks.0.mlp."),
    "multihead_attention": ("multihead_attention", "blocks.0.attn."),
    "block": ("block", "blocks.0."),
}


def _layer_output(backend, method: str, params, config, x, prefix: str):
    out = getattr(backend, method)(params, config, x, prefix=prefix)
    return backend.to_numpy(out if method == "feed_forward" else out[0])  # the layers also return their cache


@pytest.mark.parametrize("component", list(LAYERS))
def test_a_layer_depends_on_no_config_field_outside_its_config_fields(component):
    import numpy as np

    from transformer_spec import spec
    from transformer_spec.backends import load_backend
    from transformer_spec.conformance import reference as ref
    from transformer_spec.spec.errors import ConfigError

    spec_component = next(c for c in spec.COMPONENTS if c.name == component)
    declared = spec_component.config_fields
    assert declared and set(declared) <= set(cs.config_dimensions())
    method, prefix = LAYERS[component]
    backend = load_backend("numpy")
    others = {name: values for name, values in cs.config_dimensions().items() if name not in declared}
    changed = 0
    for row in cs.layer_cover(spec_component)()[:6]:
        config = row["config"]
        params = cs.model_parameters(config, 0)
        x = np.random.default_rng(0).standard_normal((2, 5, config.d_model))
        expected_ref = getattr(ref, method)(params, config, x, prefix)
        expected_backend = _layer_output(backend, method, params, config, x, prefix)
        for name, values in others.items():
            for value in values:
                try:
                    other = dataclasses.replace(config, **{name: value})
                except (ConfigError, TypeError):
                    continue  # an encoded bucket ("d_model") or a value this config cannot take
                if other == config:
                    continue
                changed += 1
                np.testing.assert_array_equal(getattr(ref, method)(params, other, x, prefix), expected_ref, err_msg=name)
                got = _layer_output(backend, method, params, other, x, prefix)
                np.testing.assert_array_equal(got, expected_backend, err_msg=f"{name}={value!r}")
    assert changed > 0
