"""The LRG table: Parquet round trip and validation errors that name the file and column."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipeline.errors import InputError
from pipeline.survey.lrg_table import REQUIRED_COLUMNS, read_lrg_table, write_lrg_table


def table(n=5) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    return pd.DataFrame({
        "lrg_id": np.arange(n, dtype=np.int64) + 1000,
        "brickname": ["1501p022"] * n,
        "ra": 150.1 + rng.uniform(0, 0.01, n),
        "dec": 2.2 + rng.uniform(0, 0.01, n),
        "mag_r": rng.uniform(18, 20.4, n),
        "mag_g": rng.uniform(19.5, 22, n),
        "mag_z": rng.uniform(17, 19.5, n),
        "psfsize_g": np.full(n, 1.5),
        "psfsize_r": np.full(n, 1.2),
        "psfsize_z": np.full(n, 1.1),
        "psfdepth_r": np.full(n, 24.0),
    })


def test_round_trip(tmp_path):
    df = table()
    uri = str(tmp_path / "lrg.parquet")
    assert write_lrg_table(df, uri) > 0
    back = read_lrg_table(uri)
    pd.testing.assert_frame_equal(back, df)
    assert back["lrg_id"].dtype == np.int64


@pytest.mark.parametrize("column", sorted(REQUIRED_COLUMNS))
def test_missing_column_names_file_and_column(tmp_path, column):
    path = tmp_path / "lrg.parquet"
    table().drop(columns=[column]).to_parquet(path)
    with pytest.raises(InputError) as exc:
        read_lrg_table(str(path))
    assert str(path) in str(exc.value) and column in str(exc.value)


@pytest.mark.parametrize("case,column", [
    ("duplicate_id", "lrg_id"),
    ("float_id", "lrg_id"),
    ("text_mag", "mag_r"),
    ("nan_ra", "ra"),
    ("inf_dec", "dec"),
    ("dec_range", "dec"),
    ("empty_brick", "brickname"),
])
def test_bad_values_name_the_column(tmp_path, case, column):
    df = table()
    if case == "duplicate_id":
        df.loc[3, "lrg_id"] = df.loc[1, "lrg_id"]
    elif case == "float_id":
        df["lrg_id"] = df["lrg_id"].astype(float)
    elif case == "text_mag":
        df["mag_r"] = df["mag_r"].astype(str)
    elif case == "nan_ra":
        df.loc[2, "ra"] = np.nan
    elif case == "inf_dec":
        df.loc[0, "dec"] = np.inf
    elif case == "dec_range":
        df.loc[0, "dec"] = 91.0
    else:
        df.loc[0, "brickname"] = ""
    path = tmp_path / "lrg.parquet"
    df.to_parquet(path)
    with pytest.raises(InputError) as exc:
        read_lrg_table(str(path))
    assert str(path) in str(exc.value) and column in str(exc.value)
    # the writer refuses the same table
    with pytest.raises(InputError, match=column):
        write_lrg_table(df, str(tmp_path / "out.parquet"))


def test_empty_table(tmp_path):
    path = tmp_path / "lrg.parquet"
    table().iloc[:0].to_parquet(path)
    with pytest.raises(InputError, match="no rows") as exc:
        read_lrg_table(str(path))
    assert str(path) in str(exc.value)


def test_missing_and_unreadable_file(tmp_path):
    with pytest.raises(InputError, match="nope.parquet"):
        read_lrg_table(str(tmp_path / "nope.parquet"))
    bad = tmp_path / "bad.parquet"
    bad.write_text("lrg_id,ra\n1,2\n")
    with pytest.raises(InputError, match="Parquet") as exc:
        read_lrg_table(str(bad))
    assert str(bad) in str(exc.value)
