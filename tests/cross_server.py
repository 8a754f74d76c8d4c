#!/usr/bin/env python3
"""Run the DuckDB queries of docs/cross-server.md against a real dataset.

Usage: cross_server.py DOC DATASET_DIR INCOMING_HASHES_FILE

Every ```sql block of DOC whose first line is `-- duckdb: NAME` is run as written, with
the guide's example paths (/data/musicdex, /data/incoming-hashes.txt) replaced by the
arguments. Prints one JSON object: {NAME: {"columns": [...], "rows": [[...], ...]}};
binary values are printed as lower-case hex. tests/parquet_export.rs compares the rows
with the same figures computed from the SQLite indexes.
"""
import json
import re
import sys

try:
    import duckdb
except ImportError:
    sys.exit(
        "cross_server.py: the duckdb Python package is missing; "
        "ci/test installs it (python3 -m pip install duckdb)"
    )

DATASET = "/data/musicdex"
INCOMING = "/data/incoming-hashes.txt"


def queries(doc_text):
    found = {}
    for block in re.findall(r"```sql\n(.*?)```", doc_text, flags=re.S):
        first, _, rest = block.partition("\n")
        m = re.fullmatch(r"-- duckdb: (\w+)", first.strip())
        if m:
            found[m.group(1)] = rest
    return found


def plain(v):
    if isinstance(v, (bytes, bytearray, memoryview)):
        return bytes(v).hex()
    return v


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    doc, dataset, incoming = sys.argv[1:]
    with open(doc, encoding="utf-8") as f:
        found = queries(f.read())
    if not found:
        sys.exit(f"cross_server.py: no `-- duckdb: NAME` query blocks in {doc}")
    con = duckdb.connect()
    out = {}
    for name, sql in found.items():
        sql = sql.replace(DATASET, dataset).replace(INCOMING, incoming)
        cur = con.execute(sql)
        columns = [d[0] for d in cur.description]
        rows = [[plain(v) for v in row] for row in cur.fetchall()]
        out[name] = {"columns": columns, "rows": rows}
    json.dump(out, sys.stdout)
    print()


if __name__ == "__main__":
    main()
