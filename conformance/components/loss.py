"""Checks for :mod:`transformer_spec.spec.loss`."""

from __future__ import annotations

import math

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.errors import DTypeError, OutOfRangeError, ShapeError

from .. import reference as ref
from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check

# Vocabulary sizes: the smallest real choice, odd, larger than every length (never equal to one, so a
# transposed (V, L) reading fails on shape).
VOCABULARIES = (2, 7, 16)
# ignore_index is static (a compiler specialises on it): the default, and 0, which ignores a real class.
IGNORE_INDICES = (-100, 0)

# The programs of every loss check: every pair of (batch axes, L, V, ignore_index), nine in all.
PROGRAMS = cs.pairwise({"batch": cs.BATCH_SHAPES, "L": cs.LENGTHS, "V": VOCABULARIES, "ignore_index": IGNORE_INDICES})


LOGITS_REGIMES = ("normal", "wide", "ties")


def _cover(ignored: tuple[float, ...]):
    """The programs, with each fraction of ignored targets and each regime of the first row of logits (values,
    not programs) meeting every option: rows of mixed regimes (a wide row after a plain one) are in it."""
    return cs.table_cover(cs.spread(PROGRAMS, ignored=ignored, logits_regime=LOGITS_REGIMES), free=("ignored",))


def _draw(case: Case, ignored: tuple[float, ...]):
    """logits (..., L, V), with each row of V an independent example in its own value regime; targets
    (..., L), a drawn fraction of them set to ignore_index; and ignore_index."""
    shape = case.draw(cs.batch_shapes(), "batch") + (case.draw(cs.lengths(), "L"),)
    V = case.draw(st.sampled_from(VOCABULARIES), "V")
    ignore_index = case.draw(st.sampled_from(IGNORE_INDICES), "ignore_index")
    logits = cs.draw_values(case, shape + (V,), LOGITS_REGIMES, "logits", stacked_axes=len(shape))
    fraction = case.draw(st.sampled_from(ignored), "ignored")
    rng = np.random.default_rng(case.draw(st.integers(0, 2**16), "target_seed"))
    targets = rng.integers(0, V, size=shape)
    targets = np.where(rng.random(shape) < fraction, ignore_index, targets)
    return logits, case.note("targets", targets), ignore_index


def _call(case: Case, logits: np.ndarray, targets: np.ndarray, ignore_index: int, logits_name: str = "logits") -> np.ndarray:
    native_logits, native_targets = case.array(logits_name, logits), case.array("targets", targets, "int64")
    return case.numpy(case.call("cross_entropy", native_logits, native_targets, ignore_index=ignore_index))


def _magnitude(case: Case, logits: np.ndarray) -> float:
    lr = case.rounded(logits)
    return float(np.abs(lr - lr.max(axis=-1, keepdims=True)).max() + 1.0) * 2


@check("loss.matches_reference", cover=_cover((0.0, 0.5)))
def matches_reference(case: Case) -> None:
    logits, targets, ignore_index = _draw(case, (0.0, 0.5))
    got = _call(case, logits, targets, ignore_index)
    expected = ref.cross_entropy(case.rounded(logits), targets, ignore_index=ignore_index)
    case.assert_close(
        got,
        np.array(expected),
        f"cross_entropy(logits, targets, ignore_index={ignore_index})",
        magnitude=np.array(_magnitude(case, logits)),
    )


@check("loss.ignore_index_ignored", cover=_cover((0.3, 0.7, 1.0)))
def ignore_index_ignored(case: Case) -> None:
    logits, targets, ignore_index = _draw(case, (0.3, 0.7, 1.0))
    got = _call(case, logits, targets, ignore_index)
    expected = ref.cross_entropy(case.rounded(logits), targets, ignore_index=ignore_index)
    case.require(
        bool(np.isfinite(got)), f"cross_entropy with ignored targets is {got!r}, expected finite (0 when all are ignored)"
    )
    case.assert_close(
        got,
        np.array(expected),
        f"cross_entropy with {int((targets == ignore_index).sum())} of {targets.size} targets ignored (ignore_index={ignore_index})",
        magnitude=np.array(_magnitude(case, logits)),
    )


@check("loss.uniform_logits_give_log_v", cover=_cover((0.0, 0.5)))
def uniform_logits_give_log_v(case: Case) -> None:
    logits, targets, ignore_index = _draw(case, (0.0, 0.5))
    c = case.draw(st.sampled_from((0.0, -3.0, 5.5)), "c")
    got = _call(case, case.note("flat", np.full(logits.shape, c)), targets, ignore_index, "flat")
    V = logits.shape[-1]
    # Ignored targets leave the mean of the others, log V each; when every target is ignored the loss is 0.
    expected = math.log(V) if (targets != ignore_index).any() else 0.0
    case.assert_close(got, np.array(expected), f"cross_entropy of equal logits over V={V}", magnitude=np.array(4.0))


@check("loss.errors", dtypes=ANY, cover=cs.table_cover(PROGRAMS))
def errors(case: Case) -> None:
    shape = case.draw(cs.batch_shapes(), "batch") + (case.draw(cs.lengths(), "L"),)
    V = case.draw(st.sampled_from(VOCABULARIES), "V")
    ignore_index = case.draw(st.sampled_from(IGNORE_INDICES), "ignore_index")
    # Each bad target comes with the row's shapes and ignore_index; each call raises, so none compiles anything.
    logits = case.array("logits", np.zeros(shape + (V,)))

    def bad(exception: type[Exception], name: str, targets: np.ndarray, dtype: str | None = "int64") -> None:
        native = case.array(name, targets, dtype)
        case.expect_error(exception, "'targets'", "cross_entropy", logits, native, ignore_index=ignore_index)

    bad(ShapeError, "targets_long", np.zeros(shape[:-1] + (shape[-1] + 1,), dtype=np.int64))
    bad(DTypeError, "targets_float", np.zeros(shape), None)
    bad(OutOfRangeError, "targets_big", np.full(shape, V))
    bad(OutOfRangeError, "targets_negative", np.full(shape, -1))
