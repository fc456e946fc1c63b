"""The LRG table (Phase 3 output): one row per LRG host, as Parquet.

Required columns (validated on read and write):

| column       | type   | unit        | meaning                                                |
|--------------|--------|-------------|--------------------------------------------------------|
| lrg_id       | int64  |             | unique LRG id                                          |
| brickname    | string |             | DR10 brick holding the LRG (its coadds hold the cutout)|
| ra, dec      | float  | deg         | ICRS position                                          |
| mag_r        | float  | AB mag      | r-band model magnitude                                 |
| psfsize_<band> | float | arcsec FWHM | PSF size at the LRG (brick psfsize maps), every band of pipeline.bands |
| psfdepth_r   | float  | AB mag      | r-band 5-sigma point-source depth at the LRG           |

Optional columns written by the synthetic survey (also numeric): mag_<band>, psfdepth_<band>
(AB mag) for the other bands; bx, by (0-based brick pixel x, y of the LRG centre, as in
DR10 Tractor catalogues); shape_r_arcsec (de Vaucouleurs semi-major effective radius);
axis_ratio (b/a); pa_pix_deg (major axis angle from +x towards +y, pixel frame); maskbits
(DR10 maskbits at the LRG pixel); cutout_inside (bool: the 64x64 cutout lies in the brick).
"""

from __future__ import annotations

import io

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline import storage
from pipeline.bands import band_columns
from pipeline.errors import InputError

#: column -> unit (psfsize_<band> for every band of pipeline.bands)
REQUIRED_COLUMNS = {
    "lrg_id": "",
    "brickname": "",
    "ra": "deg",
    "dec": "deg",
    "mag_r": "AB mag",
    **dict.fromkeys(band_columns("psfsize_{b}"), "arcsec FWHM"),
    "psfdepth_r": "AB mag",
}
NUMERIC_COLUMNS = tuple(c for c in REQUIRED_COLUMNS if c != "brickname")


def validate_lrg_table(df: pd.DataFrame, source: str) -> pd.DataFrame:
    """Check a table against the contract above; InputError names `source` and the column.

    The one LRG-table check of the project: the reader, the writer and the manifest builder all
    call it, so a table the survey writes is exactly a table the manifest accepts."""
    if not isinstance(df, pd.DataFrame):
        raise InputError(source, f"expected a pandas DataFrame, got {type(df).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(f"{source}: {missing[0]}", f"required column(s) {missing} missing; "
                                                      f"columns present: {list(df.columns)}")
    if len(df) == 0:
        raise InputError(source, "the LRG table is empty (no rows)")
    for col in NUMERIC_COLUMNS:
        if not pd.api.types.is_numeric_dtype(df[col]) or pd.api.types.is_bool_dtype(df[col]):
            raise InputError(f"{source}: {col}", f"must be numeric, got {df[col].dtype}")
    if not pd.api.types.is_integer_dtype(df["lrg_id"]):
        raise InputError(f"{source}: lrg_id", f"must be integers, got {df['lrg_id'].dtype}")
    dup = df["lrg_id"][df["lrg_id"].duplicated()]
    if len(dup):
        raise InputError(f"{source}: lrg_id", f"not unique: {len(dup)} duplicate id(s), e.g. {int(dup.iloc[0])}")
    # mag_r: every source magnitude is mag_r + src_dmag, so a NaN here is a NaN arc
    for col in ("ra", "dec", "mag_r"):
        bad = ~np.isfinite(df[col].to_numpy(dtype=float))
        if bad.any():
            raise InputError(f"{source}: {col}", f"{int(bad.sum())} non-finite value(s), "
                                                 f"e.g. at lrg_id {int(df['lrg_id'][bad].iloc[0])}")
    if ((df["ra"] < -360) | (df["ra"] > 360)).any():
        raise InputError(f"{source}: ra", "values outside [-360, 360] deg")
    if ((df["dec"] < -90) | (df["dec"] > 90)).any():
        raise InputError(f"{source}: dec", "values outside [-90, 90] deg")
    names = df["brickname"]
    if names.isna().any() or not all(isinstance(n, str) and n for n in names):
        raise InputError(f"{source}: brickname", "must be non-empty strings")
    return df


def write_lrg_table(df: pd.DataFrame, uri: str) -> int:
    """Validate and write the table as Parquet (local or S3); returns the bytes written."""
    validate_lrg_table(df, uri)
    table = pa.Table.from_pandas(df.reset_index(drop=True), preserve_index=False)
    meta = dict(table.schema.metadata or {})
    meta[b"dhs.units"] = str({c: u for c, u in REQUIRED_COLUMNS.items() if u}).encode()
    table = table.replace_schema_metadata(meta)
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    data = buf.getvalue()
    storage.write_bytes(uri, data)
    return len(data)


def read_lrg_table(uri: str) -> pd.DataFrame:
    """Read and validate an LRG table; InputError names the file (and column) when unusable."""
    raw = storage.read_bytes(uri)
    try:
        df = pq.read_table(io.BytesIO(raw)).to_pandas()
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for non-Parquet bytes
        raise InputError(uri, f"not a readable Parquet file ({type(exc).__name__}: {exc})") from None
    return validate_lrg_table(df, uri)
