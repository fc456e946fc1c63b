"""A dataset on disk (or S3): its layout, its metadata, its checksums, writing its rows.

Layout (docs/architecture.md):
    D/phase4c/region_split=<s>/part-*.parquet     + D/phase4c/_dhs_dataset.json
    D/compacted/<id>/region_split=<s>/*.parquet   + D/compacted/<id>/_dhs_dataset.json
    D/CURRENT                                     {"data": "compacted/<id>"}, replaced atomically

One job per module, all over the public API of pipeline.storage:
- `layout`: where the rows live (`resolve_data_uri`, `find_data_uri`, `set_current`), which files
  are data (`data_files`, `dir_stats`, `list_data_files`), `completeness`, and opening a dataset
  for the gate (`open_dataset`, `read_rows`);
- `metadata`: `_dhs_dataset.json` (`build_metadata`, `write_metadata`, `read_metadata` -> None
  when absent, `read_any_metadata` -> {} when absent and any producer's JSON accepted);
- `checksums`: `rows_digest` (hash of the row values, layout-independent) vs `files_checksum`
  (checksum of the data files' bytes, the `content_checksum` of receipts, validations and
  promotions); the sha256 of one file is `pipeline.storage.sha256`;
- `parquet`: contract records -> Arrow batches, the Spark Parquet write options.

Pure Python + pyarrow; Spark appears only in `rows_digest` when it is handed a Spark DataFrame.
Import the names from here (`from pipeline.dataset import ...` or `from pipeline import dataset`).
"""

from pipeline.dataset.checksums import files_checksum, rows_digest
from pipeline.dataset.layout import (
    COMPACTED_DIR,
    CURRENT_FILE,
    PHASE4C_DIR,
    SUCCESS_FILE,
    DataFile,
    Dataset,
    check_split_names,
    completeness,
    data_files,
    dir_stats,
    find_data_uri,
    list_data_files,
    open_dataset,
    phase4c_uri,
    read_rows,
    resolve_data_uri,
    set_current,
)
from pipeline.dataset.metadata import (
    FORMAT,
    METADATA_FILE,
    build_metadata,
    column_docs,
    git_commit,
    read_any_metadata,
    read_metadata,
    remove_metadata,
    utc_now,
    write_metadata,
)
from pipeline.dataset.parquet import SPARK_PARQUET_OPTIONS, records_to_batch, spark_arrow_schema

__all__ = [
    "COMPACTED_DIR", "CURRENT_FILE", "FORMAT", "METADATA_FILE", "PHASE4C_DIR", "SPARK_PARQUET_OPTIONS",
    "SUCCESS_FILE", "DataFile", "Dataset", "build_metadata", "check_split_names", "column_docs", "completeness",
    "data_files", "dir_stats", "files_checksum", "find_data_uri", "git_commit", "list_data_files",
    "open_dataset", "phase4c_uri", "read_any_metadata", "read_metadata", "read_rows", "records_to_batch",
    "remove_metadata", "resolve_data_uri", "rows_digest", "set_current", "spark_arrow_schema",
    "utc_now", "write_metadata",
]
