"""Checks for :mod:`transformer_spec.spec.embedding`."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

from transformer_spec.spec.errors import DTypeError, OutOfRangeError, ShapeError

from .. import strategies as cs
from ..case import Case
from ..registry import ANY, check

ID_DTYPES = ("int32", "int64")

# The programs of the embedding checks (table shape, ids shape and dtype): every pair of id dtype and
# width D, and each batch-axes bucket, length and vocabulary size (one row, the width itself, a larger
# table) at least once; in one row V == D, where a table read transposed keeps its shape. Five programs.
# fmt: off
EMBEDDING_TABLE = (
    # batch  L  V   D  id_dtype
    ((),     1, 1,  2, "int32"),
    ((2,),   3, 8,  8, "int32"),
    ((3, 2), 8, 16, 2, "int64"),
    ((),     8, 8,  8, "int64"),
    ((3, 2), 3, 16, 8, "int32"),
)
# fmt: on
ROWS = [dict(zip(("batch", "L", "V", "D", "id_dtype"), row)) for row in EMBEDDING_TABLE]
COVER = cs.table_cover(ROWS, pairwise_over=("id_dtype", "D"))


def _draw_shapes(case: Case) -> tuple[int, int, tuple[int, ...], str]:
    """V, D, the ids' shape (batch axes + (L,)) and their dtype, as a row of EMBEDDING_TABLE fixes them."""
    V, D = case.draw(st.sampled_from((1, 3, 7, 8, 16)), "V"), case.draw(cs.widths(), "D")
    ids_shape = case.draw(cs.batch_shapes(), "batch") + (case.draw(cs.lengths(), "L"),)
    return V, D, ids_shape, case.draw(st.sampled_from(ID_DTYPES), "id_dtype")


def _ids(case: Case, V: int, ids_shape: tuple[int, ...]) -> np.ndarray:
    return case.note("ids", np.random.default_rng(case.draw(st.integers(0, 2**16), "ids_seed")).integers(0, V, size=ids_shape))


@check("embedding.selects_rows", cover=COVER)
def selects_rows(case: Case) -> None:
    V, D, ids_shape, id_dtype = _draw_shapes(case)
    table = case.draw(cs.float_arrays((V, D), case.dtype), "table")
    ids = _ids(case, V, ids_shape)
    got = case.numpy(case.call("embedding", case.array("table", table), case.array("ids", ids, id_dtype)))
    expected = case.rounded(table)[ids]
    case.require(
        got.shape == ids_shape + (D,), f"embedding returned shape {got.shape}, expected ids.shape + (D,) = {ids_shape + (D,)}"
    )
    case.require(bool(np.array_equal(got, expected)), "embedding rows differ from table[ids] (they must be exact copies)")


BAD_IDS = ("-1", "-V", "V", "V+1", "2V")  # just below and at or beyond the table's ends


@check(
    "embedding.out_of_range_is_error",
    dtypes=ANY,
    cover=cs.covering(V=(1, 8, 16), bad_id=BAD_IDS, batch=cs.BATCH_SHAPES, L=cs.LENGTHS, id_dtype=ID_DTYPES),
)
def out_of_range_is_error(case: Case) -> None:
    V, D, ids_shape, id_dtype = _draw_shapes(case)
    bad_id = {"-1": -1, "-V": -V, "V": V, "V+1": V + 1, "2V": 2 * V}[case.draw(st.sampled_from(BAD_IDS), "bad_id")]
    ids = _ids(case, V, ids_shape).reshape(-1)  # (N,): one id is made bad at a drawn position
    ids[case.draw(st.integers(0, ids.size - 1), "bad_position")] = bad_id
    ids = case.note("bad_ids", ids.reshape(ids_shape))  # (N,) -> ids_shape
    table = case.array("table", np.arange(V * D, dtype=np.float64).reshape(V, D))  # (V * D,) -> (V, D)
    case.expect_error(OutOfRangeError, "'ids'", "embedding", table, case.array("bad_ids", ids, id_dtype))


@check("embedding.errors", dtypes=ANY, cover=COVER)
def errors(case: Case) -> None:
    V, D, ids_shape, id_dtype = _draw_shapes(case)
    # Each bad argument comes with the row's valid other one; each call raises, so none compiles anything.
    table, ids = case.array("table", np.zeros((V, D))), case.array("ids", _ids(case, V, ids_shape), id_dtype)
    case.expect_error(DTypeError, "'ids'", "embedding", table, case.array("float_ids", np.zeros(ids_shape)))
    case.expect_error(DTypeError, "'table'", "embedding", case.array("int_table", np.zeros((V, D), dtype=np.int64), "int64"), ids)
    case.expect_error(ShapeError, "'table'", "embedding", case.array("table_1d", np.zeros((V,))), ids)
