"""DuckDB side of benches/query.rs and benches/maintenance.rs: times the same queries over
the Parquet files the table's Delta log lists (files replaced by compaction or left by a
failed unit stay on disk until vacuum, and must not be read).

Usage: python query_duckdb.py TABLE_DIR REPEATS < queries.json; prints
{"name": [median_seconds, rows], ...} as JSON.
"""

import json
import statistics
import sys
import time

import duckdb
from deltalake import DeltaTable

table_dir, repeats = sys.argv[1], int(sys.argv[2])
queries = json.load(sys.stdin)
con = duckdb.connect()
con.execute("SET TimeZone = 'UTC'")
files = ", ".join(f"'{path}'" for path in DeltaTable(table_dir).file_uris())
con.execute(
    f"CREATE VIEW snowplow AS SELECT * FROM read_parquet([{files}], "
    "hive_partitioning = true, union_by_name = true)")
results = {}
for name, sql in queries.items():
    rows = con.sql(sql).to_arrow_table().num_rows  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        con.sql(sql).to_arrow_table()
        times.append(time.perf_counter() - start)
    results[name] = [statistics.median(times), rows]
print(json.dumps(results))
