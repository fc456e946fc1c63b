"""Storage benchmark (not a test): bytes per stamp of the pixel columns (image, invvar, arc,
maskbits) and read-and-decode stamps/s, for the way we write them now, the seed's way, and
the BYTE_STREAM_SPLIT reference, against the <= 40 KB target (SPEC 10). Measures only.

  .venv/bin/python -m benchmarks.storage_bench [--rows 400] [--dataset D/phase4c] [--repeats 3]
                                               [--invvar-scatter 0.05]

Rows: by default made in memory by pipeline.injection.task.inject_task on the test fixtures
(tests.injection_fixtures: float32 Gaussian sky noise, a new noise realisation for every 3 rows
so that no two stamps share pixels, constant invvar with a masked star, demo priors, half of the
rows controls with a null arc), so it runs on a fresh clone; with --dataset, the
first --rows rows of an existing Phase 4c/compacted Parquet dataset (e.g. a `make demo` output).

Encodings (each writes one Parquet file holding only the 4 pixel columns; bytes = file size / rows):
  raw          unrounded pixels, pyarrow Parquet zstd level 3, flat list<float32>/list<int32>,
               dictionary on (how the rows were written before pipeline.pixels): lossless
  seed         gzip Parquet, one binary column per array holding np.savez_compressed(array)
               (the seed's layout), of the unrounded pixels: lossless
  stored       what the pipeline writes now: pipeline.pixels (image and arc on the 2^-14 nmgy
               grid, |change| <= 3.05e-5 nmgy; invvar to 11 significant bits, relative change
               <= 2^-12; maskbits exact), zstd 3, dictionary on, no BYTE_STREAM_SPLIT: what
               Spark's parquet-mr writes (pipeline.dataset.SPARK_PARQUET_OPTIONS)
  stored+bss   stored with BYTE_STREAM_SPLIT on the float columns and dictionary off (pyarrow
               can; parquet-mr 1.13 through Spark cannot): the reference for a future writer
With --dataset, the rows are read as stored; when the dataset predates pipeline.pixels (no
`pixel_quantization` in its _dhs_dataset.json) they are the raw rows and "stored" rounds them.
The dataset's own bytes per row (all columns, as written by Spark) are reported beside.
Read-and-decode: pyarrow reads the file and every pixel column becomes a numpy [rows, ...] array
(seed: np.load of every blob); median of --repeats, stamps/s on one core.

Writes benchmarks/results/storage.json.
"""

from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import argparse  # noqa: E402
import io  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

from benchmarks.common import write_results  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "storage.json"
PIXEL_COLUMNS = ("image", "invvar", "arc", "maskbits")
NB, N = 3, 64


# ------------------------------------------------------------------ inputs

def rows_in_memory(n: int) -> dict[str, list]:
    from benchmarks.injection_bench import build_tasks
    from pipeline.injection import task as task_mod
    from pipeline.injection.task import inject_task

    from tests.injection_fixtures import make_brick

    tasks, _, bank, ctx = build_tasks(n)
    recs = []
    for k, t in enumerate(tasks):
        if k % 2:  # half controls, like a real split
            t["is_control"] = True
            t["lens_model"] = "CONTROL"
        if k % 3 == 0:  # a fresh noise realisation every 3 tasks (3 usable LRGs per brick):
            brick = make_brick(seed=1000 + k, psfsize_maps=False)  # no two stamps share pixels
        stored = task_mod.quantize_record
        task_mod.quantize_record = lambda r: r  # the unrounded pixels: the lossless baselines
        try:
            recs.append(inject_task(t, brick, bank, ctx))
        finally:
            task_mod.quantize_record = stored
    return {c: [r[c] for r in recs] for c in PIXEL_COLUMNS}


def rows_from_dataset(path: str, n: int) -> dict[str, list]:
    import pyarrow.dataset as pads

    d = pads.dataset(path, format="parquet", partitioning="hive")
    t = d.head(n, columns=list(PIXEL_COLUMNS))
    out = {}
    for c in PIXEL_COLUMNS:
        col = t.column(c).combine_chunks()
        dt = np.int32 if c == "maskbits" else np.float32
        out[c] = [None if v is None else np.asarray(v, dtype=dt) for v in col.to_pylist()]
    return out


# ------------------------------------------------------------------ quantizers

def to_stored(rows: dict[str, list]) -> tuple[dict[str, list], dict]:
    """pipeline.pixels applied to raw rows, and the measured worst-case changes."""
    from pipeline.pixels import quantize_arc, quantize_image, quantize_invvar

    out = {c: list(v) for c, v in rows.items()}
    worst = {"image_max_abs_nmgy": 0.0, "arc_max_abs_nmgy": 0.0, "image_max_abs_over_sigma": 0.0,
             "invvar_max_rel": 0.0}
    for i in range(len(rows["image"])):
        img, iv, arc = rows["image"][i], rows["invvar"][i], rows["arc"][i]
        if img is None:
            continue
        qi = quantize_image(img)
        d = np.abs(qi.astype(float) - img).reshape(NB, -1).max(axis=1)
        sig = 1.0 / np.sqrt(np.array([np.median(b[b > 0]) if (b > 0).any() else 1.0 for b in iv.reshape(NB, -1)]))
        worst["image_max_abs_nmgy"] = max(worst["image_max_abs_nmgy"], float(d.max()))
        worst["image_max_abs_over_sigma"] = max(worst["image_max_abs_over_sigma"], float((d / sig).max()))
        out["image"][i] = qi
        if arc is not None:
            qa = quantize_arc(arc)
            worst["arc_max_abs_nmgy"] = max(worst["arc_max_abs_nmgy"], float(np.abs(qa.astype(float) - arc).max()))
            out["arc"][i] = qa
        qv = quantize_invvar(iv)
        pos = iv > 0
        if pos.any():
            worst["invvar_max_rel"] = max(worst["invvar_max_rel"], float(np.abs(qv[pos] / iv[pos] - 1).max()))
        out["invvar"][i] = qv
    return out, worst


# ------------------------------------------------------------------ writers / readers

def _list_array(values: list, dtype) -> pa.Array:
    n = len(values)
    lengths = np.array([0 if v is None else v.size for v in values], dtype=np.int64)
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat = [v for v in values if v is not None]
    data = np.concatenate(flat).astype(dtype) if flat else np.zeros(0, dtype)
    nulls = np.array([v is None for v in values])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(data), mask=pa.array(nulls) if nulls.any() else None)


def table_lists(rows: dict[str, list]) -> pa.Table:
    return pa.table({c: _list_array(rows[c], np.int32 if c == "maskbits" else np.float32) for c in PIXEL_COLUMNS})


def table_npz(rows: dict[str, list]) -> pa.Table:
    def blob(v):
        if v is None:
            return None
        buf = io.BytesIO()
        np.savez_compressed(buf, a=v)
        return buf.getvalue()

    return pa.table({c: pa.array([blob(v) for v in rows[c]], type=pa.binary()) for c in PIXEL_COLUMNS})


def write(table: pa.Table, path: Path, compression: str, level: int | None, bss: bool) -> None:
    kw = {}
    if bss:  # (pyarrow refuses BYTE_STREAM_SPLIT on dictionary-encoded columns)
        kw["column_encoding"] = {f"{c}.list.element": "BYTE_STREAM_SPLIT" for c in ("image", "invvar", "arc")}
        kw["use_dictionary"] = ["maskbits.list.element"]
    pq.write_table(table, path, compression=compression, compression_level=level, **kw)


def read_lists(path: Path) -> dict[str, np.ndarray]:
    t = pq.read_table(path)
    out = {}
    for c in PIXEL_COLUMNS:
        col = t.column(c).combine_chunks()
        out[c] = col.values.to_numpy(zero_copy_only=False)  # flat values of the non-null rows
        out[c] = out[c].reshape(-1, N, N) if c == "maskbits" else out[c].reshape(-1, NB, N, N)
    return out


def read_npz(path: Path) -> dict[str, list]:
    t = pq.read_table(path)
    return {c: [None if b is None else np.load(io.BytesIO(b))["a"] for b in t.column(c).to_pylist()]
            for c in PIXEL_COLUMNS}


def measure(name: str, table: pa.Table, reader, workdir: Path, repeats: int, rows: int, **wkw) -> dict:
    path = workdir / f"{name}.parquet"
    t0 = time.perf_counter()
    write(table, path, **wkw)
    write_s = time.perf_counter() - t0
    size = path.stat().st_size
    md = pq.ParquetFile(path).metadata
    per_col = {c: 0 for c in PIXEL_COLUMNS}
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        for k in range(rg.num_columns):
            per_col[rg.column(k).path_in_schema.split(".")[0]] += rg.column(k).total_compressed_size
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        reader(path)
        times.append(time.perf_counter() - t0)
    read_s = statistics.median(times)
    return {"bytes_per_stamp": round(size / rows), "kb_per_stamp": round(size / rows / 1000, 1),
            "column_bytes_per_stamp": {c: round(v / rows) for c, v in per_col.items()},
            "read_decode_stamps_per_s": round(rows / read_s, 1), "write_s": round(write_s, 2)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=400)
    p.add_argument("--dataset", default=None, help="an existing Parquet dataset to sample rows from")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--invvar-scatter", type=float, default=0.0,
                   help="stress case: multiply every positive invvar pixel by exp(N(0, x)) (full float32 "
                        "entropy, as a per-pixel-varying DR10 invvar may have; our synthetic survey's is constant)")
    p.add_argument("--out", default=str(RESULTS))
    args = p.parse_args(argv)

    load0 = os.getloadavg()
    rows = rows_from_dataset(args.dataset, args.rows) if args.dataset else rows_in_memory(args.rows)
    if args.invvar_scatter > 0:
        rng = np.random.default_rng(5)
        rows["invvar"] = [None if v is None else (v * np.exp(rng.normal(0, args.invvar_scatter, v.shape))).astype(np.float32)
                          for v in rows["invvar"]]
    n = len(rows["image"])
    n_inj = sum(a is not None for a in rows["arc"])
    meta, dataset_bytes_per_row = None, None
    if args.dataset:
        from pipeline.dataset import read_metadata

        meta = read_metadata(args.dataset)
        if meta and meta.get("rows"):
            dataset_bytes_per_row = round(meta["bytes"] / meta["rows"])
    already_stored = bool(meta and meta.get("pixel_quantization"))
    if already_stored:
        stored, worst = rows, {"note": "rows read as stored; no raw pixels to compare"}
    else:
        stored, worst = to_stored(rows)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        w = Path(tmp)
        if not already_stored:
            results["raw"] = measure("raw", table_lists(rows), read_lists, w, args.repeats, n,
                                     compression="zstd", level=3, bss=False)
            results["seed"] = measure("seed", table_npz(rows), read_npz, w, args.repeats, n,
                                      compression="gzip", level=None, bss=False)
        ts = table_lists(stored)
        results["stored"] = measure("stored", ts, read_lists, w, args.repeats, n, compression="zstd", level=3, bss=False)
        results["stored+bss"] = measure("storedbss", ts, read_lists, w, args.repeats, n, compression="zstd", level=3, bss=True)
    load1 = os.getloadavg()
    from pipeline.pixels import STORAGE_QUANTIZATION

    bounds = {
        "raw": "lossless", "seed": "lossless",
        "stored": f"image |change| <= {STORAGE_QUANTIZATION['image']['max_abs_error_nmgy']:.3g} nmgy, arc <= "
                  f"{STORAGE_QUANTIZATION['arc']['max_abs_error_nmgy']:.3g} nmgy, invvar relative "
                  f"<= {STORAGE_QUANTIZATION['invvar']['max_rel_error']:.3g}, maskbits exact; measured {worst}",
        "stored+bss": "as stored",
    }
    for k, v in results.items():
        v["bound"] = bounds[k]
    out = {
        "what": "bytes per stamp of image+invvar+arc+maskbits (file size / rows, pixel columns only) and read+decode stamps/s (one core)",
        "command": "python -m benchmarks.storage_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "host": platform.node(), "cpus": os.cpu_count(),
        "load_avg_start": [round(x, 2) for x in load0], "load_avg_end": [round(x, 2) for x in load1],
        "rows": n, "injections": n_inj, "source": args.dataset or "in-memory fixtures (inject_task)",
        "invvar_scatter": args.invvar_scatter, "dataset_bytes_per_row_all_columns": dataset_bytes_per_row,
        "pyarrow": pa.__version__, "results": results, "target_kb": 40,
    }
    path = write_results(args.out, out)
    print(f"{n} rows ({n_inj} injections) from {out['source']}; load {load0[0]:.2f} -> {load1[0]:.2f}")
    print(f"  {'encoding':12s} {'KB/stamp':>9s} {'image':>7s} {'invvar':>7s} {'arc':>7s} {'mask':>6s} {'read st/s':>10s}")
    for k, v in results.items():
        c = v["column_bytes_per_stamp"]
        print(f"  {k:12s} {v['kb_per_stamp']:9.1f} {c['image'] / 1000:7.1f} {c['invvar'] / 1000:7.1f} "
              f"{c['arc'] / 1000:7.1f} {c['maskbits'] / 1000:6.2f} {v['read_decode_stamps_per_s']:10.0f}")
    if dataset_bytes_per_row:
        print(f"  the dataset as written (all columns, _dhs_dataset.json bytes / rows): {dataset_bytes_per_row / 1000:.1f} KB/row")
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
