"""What users run instead, for benches/ingest.rs: the `deltalake` package's write_deltalake
of the same batches with the same partition columns.

Usage: python ingest_deltalake.py MODE IPC_FILE TABLE_DIR; prints the seconds as JSON.
  bulk:   one write_deltalake of every batch (derived partition columns included in the time)
  appends: one write_deltalake append per batch, one after the other
"""

import json
import sys
import time

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import WriterProperties, write_deltalake

mode, ipc_file, table_dir = sys.argv[1], sys.argv[2], sys.argv[3]
with pa.OSFile(ipc_file, "rb") as f:
    batches = pa.ipc.open_file(f).read_all().to_batches()
PARTITIONS = ["app_id", "year", "month", "day", "hour"]
# lakeport's default Parquet settings, so both encode the same way (deltalake's own default
# is snappy, which is cheaper to encode and larger to store).
PROPS = WriterProperties(compression="ZSTD", compression_level=1)


def with_partitions(table):
    """lakeport derives these from the event time; a deltalake user derives them too."""
    ts = table["collector_tstamp"]
    for name, part, width in [("year", pc.year, 4), ("month", pc.month, 2),
                              ("day", pc.day, 2), ("hour", pc.hour, 2)]:
        text = pc.utf8_lpad(pc.cast(part(ts), pa.string()), width, "0")
        table = table.append_column(name, text)
    return table


start = time.perf_counter()
if mode == "bulk":
    write_deltalake(table_dir, with_partitions(pa.Table.from_batches(batches)),
                    partition_by=PARTITIONS, mode="append", writer_properties=PROPS)
elif mode == "appends":
    for batch in batches:
        write_deltalake(table_dir, with_partitions(pa.Table.from_batches([batch])),
                        partition_by=PARTITIONS, mode="append", writer_properties=PROPS)
else:
    sys.exit(f"unknown mode {mode}")
print(json.dumps({"seconds": time.perf_counter() - start}))
