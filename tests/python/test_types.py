"""What a Python producer sends by default: pyarrow makes Python ints Int64 and floats
Float64. Narrower table columns take them when every value fits; a value that does not fit
is INVALID_ARGUMENT naming the column, the row and the value, and nothing of it lands."""

import pyarrow as pa
import pytest

from conftest import put_table, snowplow_table, sql


def with_defaults(n, widths):
    """The snowplow table plus columns as pyarrow infers them from plain Python values."""
    table = snowplow_table(n)
    table = table.append_column("dvce_screenwidth", pa.array(widths))  # Int32 in the table
    return table.append_column("domain_sessionidx", pa.array(list(range(n))))  # Int32 too


def test_python_ints_land_in_int32_columns_when_they_fit(server):
    table = with_defaults(3, [1920, None, 375])
    assert table.schema.field("dvce_screenwidth").type == pa.int64()
    acks = put_table(server, table)
    assert sum(a["rows_committed"] for a in acks) == 3
    rows = sql(server, "SELECT dvce_screenwidth FROM snowplow ORDER BY dvce_screenwidth NULLS LAST")
    assert rows.schema.field("dvce_screenwidth").type == pa.int32()
    assert rows.column(0).to_pylist() == [375, 1920, None]


def test_a_value_that_does_not_fit_is_invalid_argument_and_nothing_lands(server):
    put_table(server, with_defaults(3, [1920, 1080, 375]))
    # pyarrow raises ArrowInvalid for INVALID_ARGUMENT.
    with pytest.raises(pa.ArrowInvalid) as err:
        put_table(server, with_defaults(3, [1920, 2**40, 375]))
    message = str(err.value)
    assert '"dvce_screenwidth"' in message and "row 1" in message and str(2**40) in message, message
    assert sql(server, "SELECT count(*) AS n FROM snowplow").column(0).to_pylist() == [3]
