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


def _draw(case: Case, ignore_fraction: float = 0.0):
    shape = case.draw(cs.batch_shapes(), "batch") + (case.draw(cs.lengths(), "L"),)
    V = case.draw(st.sampled_from(VOCABULARIES), "V")
    logits = case.draw(cs.float_arrays(shape + (V,), case.dtype, ("normal", "wide", "ties")), "logits")
    rng = np.random.default_rng(case.draw(st.integers(0, 2**16), "target_seed"))
    targets = rng.integers(0, V, size=shape)
    if ignore_fraction:
        targets = np.where(rng.random(shape) < ignore_fraction, -100, targets)
    case.note("targets", targets)
    return logits, targets


def _magnitude(case: Case, logits: np.ndarray) -> float:
    lr = case.rounded(logits)
    return float(np.abs(lr - lr.max(axis=-1, keepdims=True)).max() + 1.0) * 2


VOCABULARIES = (2, 3, 7, 16)


@check("loss.matches_reference", cover=cs.covering(batch=cs.BATCH_SHAPES, L=cs.LENGTHS, V=VOCABULARIES))
def matches_reference(case: Case) -> None:
    logits, targets = _draw(case)
    got = case.numpy(case.call("cross_entropy", case.array("logits", logits), case.array("targets", targets, "int64")))
    expected = ref.cross_entropy(case.rounded(logits), targets)
    case.assert_close(got, np.array(expected), "cross_entropy(logits, targets)", magnitude=np.array(_magnitude(case, logits)))


@check("loss.ignore_index_ignored", cover=cs.covering(ignore_fraction=(0.3, 0.7, 1.0), L=cs.LENGTHS, V=(2, 16)))
def ignore_index_ignored(case: Case) -> None:
    logits, targets = _draw(case, ignore_fraction=case.draw(st.sampled_from((0.3, 0.7, 1.0)), "ignore_fraction"))
    got = case.numpy(case.call("cross_entropy", case.array("logits", logits), case.array("targets", targets, "int64")))
    expected = ref.cross_entropy(case.rounded(logits), targets, ignore_index=-100)
    case.require(
        bool(np.isfinite(got)), f"cross_entropy with ignored targets is {got!r}, expected finite (0 when all are ignored)"
    )
    case.assert_close(
        got,
        np.array(expected),
        f"cross_entropy with {int((targets == -100).sum())} of {targets.size} targets ignored",
        magnitude=np.array(_magnitude(case, logits)),
    )


@check("loss.uniform_logits_give_log_v")
def uniform_logits_give_log_v(case: Case) -> None:
    logits, targets = _draw(case)
    c = case.draw(st.sampled_from((0.0, -3.0, 5.5)), "c")
    flat = np.full(logits.shape, c)
    got = case.numpy(case.call("cross_entropy", case.array("logits", flat), case.array("targets", targets, "int64")))
    V = logits.shape[-1]
    case.assert_close(got, np.array(math.log(V)), f"cross_entropy of equal logits over V={V}", magnitude=np.array(4.0))


@check("loss.errors", dtypes=ANY)
def errors(case: Case) -> None:
    logits = case.array("logits", np.zeros((2, 3, 5)))
    case.expect_error(
        ShapeError, "'targets'", "cross_entropy", logits, case.array("targets_short", np.zeros((2, 2), dtype=np.int64), "int64")
    )
    case.expect_error(DTypeError, "'targets'", "cross_entropy", logits, case.array("targets_float", np.zeros((2, 3))))
    case.expect_error(
        OutOfRangeError, "'targets'", "cross_entropy", logits, case.array("targets_big", np.full((2, 3), 5), "int64")
    )
    case.expect_error(
        OutOfRangeError, "'targets'", "cross_entropy", logits, case.array("targets_negative", np.full((2, 3), -1), "int64")
    )
