"""Checks for :mod:`transformer_spec.spec.embedding`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.errors import DTypeError, OutOfRangeError, ShapeError

from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check


@check("embedding.selects_rows")
def selects_rows(case: Case) -> None:
    V, D = case.draw(st.sampled_from((1, 3, 7, 16)), "V"), case.draw(cs.widths(), "D")
    table = case.draw(cs.float_arrays((V, D), case.dtype), "table")
    ids_shape = case.draw(cs.batch_shapes(), "batch") + (case.draw(cs.lengths(), "L"),)
    ids = np.random.default_rng(case.draw(st.integers(0, 2**16), "ids_seed")).integers(0, V, size=ids_shape)
    id_dtype = case.draw(st.sampled_from(("int32", "int64")), "id_dtype")
    got = case.numpy(case.call("embedding", case.array("table", table), case.array("ids", ids, id_dtype)))
    expected = case.rounded(table)[ids]
    case.require(
        got.shape == ids_shape + (D,), f"embedding returned shape {got.shape}, expected ids.shape + (D,) = {ids_shape + (D,)}"
    )
    case.require(bool(np.array_equal(got, expected)), "embedding rows differ from table[ids] (they must be exact copies)")


@check("embedding.out_of_range_is_error", dtypes=ANY)
def out_of_range_is_error(case: Case) -> None:
    V = case.draw(st.sampled_from((3, 7, 16)), "V")
    bad_id = case.draw(st.sampled_from((-1, -V, V, V + 1, 2 * V)), "bad_id")
    L = case.draw(cs.lengths(), "L")
    ids = np.zeros((1, L), dtype=np.int64)
    ids[0, case.draw(st.integers(0, L - 1), "bad_position")] = bad_id
    table = case.array("table", np.arange(V * 4, dtype=np.float64).reshape(V, 4))
    case.expect_error(OutOfRangeError, "'ids'", "embedding", table, case.array("ids", ids, "int64"))


@check("embedding.errors", dtypes=ANY)
def errors(case: Case) -> None:
    table = case.array("table", np.zeros((5, 4)))
    case.expect_error(DTypeError, "'ids'", "embedding", table, case.array("float_ids", np.zeros((2, 3))))
    case.expect_error(
        ShapeError,
        "'table'",
        "embedding",
        case.array("table_1d", np.zeros((5,))),
        case.array("ids", np.zeros((2,), dtype=np.int64), "int64"),
    )
