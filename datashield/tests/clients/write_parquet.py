"""Writes the parquet tables of tests/parquet.rs with pyarrow, and the same values as CSV.

Usage: write_parquet.py DIR. Under DIR: parquet/cohort/people.parquet and csv/cohort/people.csv
(the same table, with one data dictionary each), and one project per refusal under refused/.
"""

import csv
import math
import os
import sys

import pyarrow as pa
import pyarrow.parquet as pq

out = sys.argv[1]
ROWS = 1000


def write_csv(path, table):
    """The table's values as the CSV reader reads them: NA for null, R's spellings otherwise."""

    def cell(value):
        if value is None:
            return "NA"
        if isinstance(value, bool):
            return "TRUE" if value else "FALSE"
        if isinstance(value, float):
            if math.isnan(value):
                return "NaN"
            if math.isinf(value):
                return "Inf" if value > 0 else "-Inf"
            return repr(value)  # the shortest text that reads back as the same double
        return str(value)

    # Floats as the reader will see them: float32 widened to float64 exactly.
    columns = []
    for column in table.columns:
        if pa.types.is_floating(column.type):
            column = column.cast(pa.float64())
        elif pa.types.is_dictionary(column.type):
            column = column.cast(pa.string())
        columns.append(column.to_pylist())
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(table.column_names)
        writer.writerows([cell(v) for v in row] for row in zip(*columns))


def project(*parts):
    path = os.path.join(out, *parts)
    os.makedirs(path, exist_ok=True)
    return path


sites = ["north", "south", "east"]
notes = ["zürich", "a, quoted \"note\"", "plain", "NA-free", "x"]
table = pa.table(
    {
        # int64 within R's integers, with nulls.
        "id": pa.array([None if i % 97 == 5 else i * 3 - 1500 for i in range(ROWS)], pa.int64()),
        "n32": pa.array(
            [2147483647 if i == 7 else -2147483647 if i == 8 else None if i % 13 == 0 else i - 400
             for i in range(ROWS)],
            pa.int32(),
        ),
        "small": pa.array([(i % 200) - 100 for i in range(ROWS)], pa.int8()),
        # int64 beyond R's integers (2^53 + 1 among them): declared numeric.
        "big": pa.array([3_000_000_000 * (i - 500) + (9_007_199_254_740_993 if i == 3 else 0)
                         for i in range(ROWS)], pa.int64()),
        # Unsigned, stored in the signed type's bits: 4294967295 must not read as -1.
        "u32": pa.array([4_294_967_295 if i == 5 else i for i in range(ROWS)], pa.uint32()),
        "x": pa.array(
            [None if i % 11 == 0 else math.nan if i % 17 == 0 else math.inf if i == 1
             else -math.inf if i == 2 else -0.0 if i == 4 else (i - 500) / 7 for i in range(ROWS)],
            pa.float64(),
        ),
        "f32": pa.array([None if i % 19 == 0 else math.nan if i == 3 else i / 10 for i in range(ROWS)],
                        pa.float32()),
        "flag": pa.array([None if i % 23 == 0 else i % 3 == 0 for i in range(ROWS)], pa.bool_()),
        # An Arrow dictionary column (dictionary-encoded on disk), declared categorical.
        "site": pa.array([None if i % 29 == 0 else sites[i % 3] for i in range(ROWS)]).dictionary_encode(),
        # A string column written PLAIN (not dictionary-encoded), not declared: character.
        "note": pa.array([None if i % 31 == 0 else notes[i % 5] for i in range(ROWS)], pa.string()),
    }
)
dictionary = (
    "columns:\n"
    "- {name: site, type: categorical, levels: [north, south, east]}\n"
    "- {name: big, type: numeric}\n"
    "- {name: u32, type: numeric}\n"
)
for kind in ("parquet", "csv"):
    with open(os.path.join(project(kind, "cohort"), "people.dictionary.yaml"), "w") as f:
        f.write(dictionary)
path = os.path.join(project("parquet", "cohort"), "people.parquet")
# Several row groups and small pages, so that reading crosses both.
pq.write_table(table, path, compression="snappy", row_group_size=300, data_page_size=512,
               use_dictionary=["site"])
write_csv(os.path.join(out, "csv", "cohort", "people.csv"), table)
metadata = pq.ParquetFile(path).metadata
assert metadata.num_row_groups == 4, metadata
codecs = {metadata.row_group(0).column(c).compression for c in range(metadata.num_columns)}
assert codecs == {"SNAPPY"}, codecs
encodings = metadata.row_group(0).column(table.column_names.index("site")).encodings
assert "RLE_DICTIONARY" in encodings or "PLAIN_DICTIONARY" in encodings, encodings


def refused(name, columns, dictionary=None, compression="snappy"):
    path = project("refused", name, "cohort")
    pq.write_table(pa.table(columns), os.path.join(path, "t.parquet"), compression=compression)
    if dictionary:
        with open(os.path.join(path, "t.dictionary.yaml"), "w") as f:
            f.write(dictionary)


refused("timestamp", {"id": [1, 2], "when": pa.array([0, 1], pa.timestamp("us"))})
refused("date", {"born": pa.array([0, 1], pa.date32())})
refused("decimal", {"amount": pa.array([1, 2], pa.decimal128(10, 2))})
refused("list", {"tags": pa.array([[1], [2, 3]], pa.list_(pa.int32()))})
refused("struct", {"pair": pa.array([{"a": 1}, {"a": 2}])})
refused("binary", {"blob": pa.array([b"\x00", b"\x01"], pa.binary())})
refused("int64_range", {"count": pa.array([1, 2, 3_000_000_000], pa.int64())})
refused("level", {"site": ["north", "south", "west"]},
        "columns:\n- {name: site, type: categorical, levels: [north, south, east]}\n")
refused("declared_type", {"flag": [True, False]}, "columns:\n- {name: flag, type: integer}\n")
refused("zstd", {"n": [1, 2]}, compression="zstd")
refused("na_integer", {"n": pa.array([1, -2147483648], pa.int32())})
# Both people.csv and people.parquet in one project.
clash = project("refused", "clash", "cohort")
pq.write_table(pa.table({"a": [1]}), os.path.join(clash, "people.parquet"))
with open(os.path.join(clash, "people.csv"), "w") as f:
    f.write("a\n1\n")
# Text that is not NA in parquet: "" and "NA" are values there, a null is the missing one.
# Uncompressed, the other codec read.
pq.write_table(pa.table({"s": ["", "NA", None]}), os.path.join(project("text", "cohort"), "t.parquet"),
               compression="none")
