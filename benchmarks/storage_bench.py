"""Storage benchmark (not a test): bytes per stamp of the pixel columns (image, invvar, arc,
maskbits) and read-and-decode stamps/s, for the way we write them now, the seed's way, and
candidate encodings for the <= 40 KB target (SPEC 10). MEASURES ONLY: nothing here changes the
data contract or the writers.

  .venv/bin/python -m benchmarks.storage_bench [--rows 400] [--dataset D/phase4c] [--repeats 3]
                                               [--invvar-scatter 0.05]

Rows: by default made in memory by pipeline.injection.task.inject_task on the test fixtures
(tests.injection_fixtures: float32 Gaussian sky noise, a new noise realisation for every 3 rows
so that no two stamps share pixels, constant invvar with a masked star, demo priors, half of the
rows controls with a null arc), so it runs on a fresh clone; with --dataset, the
first --rows rows of an existing Phase 4c/compacted Parquet dataset (e.g. a `make demo` output).

Encodings (each writes one Parquet file holding only the 4 pixel columns; bytes = file size / rows):
  current      pyarrow Parquet, zstd level 3 (Spark's parquet-mr default), the contract's flat
               list<float32> / list<int32> columns, dictionary on (as Spark does)
  seed         gzip Parquet, one binary column per array holding np.savez_compressed(array)
  bss          current + BYTE_STREAM_SPLIT on the float columns (lossless)
  q16+bss      image and arc rounded to a power-of-two step <= sigma/16 per band and stamp
               (sigma = 1/sqrt(median positive invvar of that band in the stamp)): every value
               moves by <= step/2 <= sigma/32, adds variance <= step^2/12 <= sigma^2/3072
               (+0.016% in sigma); invvar rounded to 11 significant bits (relative error <=
               2^-12 = 0.024%); BYTE_STREAM_SPLIT + zstd 3. The rounded values are still float32:
               readers need no change, the contract's dtypes stay.
  abs+bss      image and arc rounded to the absolute step 2^-14 nmgy = 6.1e-5 (half of it bounds
               the change: 3.1e-5 nmgy), finer than DR10's own 1e-4 nmgy quantum (docs/physics.md),
               invvar as above, BYTE_STREAM_SPLIT + zstd 3
  q16+bss+z9   q16+bss with zstd level 9
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
import json  # noqa: E402
import platform  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402

RESULTS = Path(__file__).parent / "results" / "storage.json"
PIXEL_COLUMNS = ("image", "invvar", "arc", "maskbits")
NB, N = 3, 64


# ------------------------------------------------------------------ inputs

def rows_in_memory(n: int) -> dict[str, list]:
    from benchmarks.injection_bench import build_tasks
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
        recs.append(inject_task(t, brick, bank, ctx))
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

def _pow2_floor(x: np.ndarray) -> np.ndarray:
    return np.exp2(np.floor(np.log2(x)))


def band_steps_sigma(invvar: np.ndarray, frac: float = 1 / 16) -> np.ndarray:
    """Per band: the largest power of two <= frac * sigma, sigma from the median positive invvar."""
    iv = invvar.reshape(NB, -1)
    steps = np.empty(NB)
    for b in range(NB):
        pos = iv[b][iv[b] > 0]
        sigma = 1.0 / np.sqrt(np.median(pos)) if pos.size else 1.0
        steps[b] = _pow2_floor(frac * sigma)
    return steps


def quantize(values: np.ndarray, steps: np.ndarray) -> np.ndarray:
    """round(v / step) * step per band, in float32 (exact: steps are powers of two)."""
    v = values.reshape(NB, -1).astype(np.float64)
    q = np.round(v / steps[:, None]) * steps[:, None]
    return q.astype(np.float32).ravel()


def round_mantissa(values: np.ndarray, bits: int = 11) -> np.ndarray:
    """float32 rounded to `bits` significant bits (relative error <= 2^-bits)."""
    v = np.asarray(values, dtype=np.float32)
    m, e = np.frexp(v.astype(np.float64))
    return np.ldexp(np.round(m * 2.0**bits) / 2.0**bits, e).astype(np.float32)


def transform(rows: dict[str, list], mode: str) -> tuple[dict[str, list], dict]:
    """Quantized copy of the rows and the measured worst-case changes."""
    out = {c: list(v) for c, v in rows.items()}
    worst = {"image_max_abs_over_sigma": 0.0, "arc_max_abs_over_sigma": 0.0, "invvar_max_rel": 0.0,
             "image_max_abs_nmgy": 0.0}
    for i in range(len(rows["image"])):
        img, iv, arc = rows["image"][i], rows["invvar"][i], rows["arc"][i]
        if img is None:
            continue
        steps = band_steps_sigma(iv) if mode == "q16" else np.full(NB, 2.0**-14)
        sig = 1.0 / np.sqrt(np.array([np.median(b[b > 0]) if (b > 0).any() else 1.0 for b in iv.reshape(NB, -1)]))
        qi = quantize(img, steps)
        d = np.abs(qi.astype(float) - img).reshape(NB, -1).max(axis=1)
        worst["image_max_abs_over_sigma"] = max(worst["image_max_abs_over_sigma"], float((d / sig).max()))
        worst["image_max_abs_nmgy"] = max(worst["image_max_abs_nmgy"], float(d.max()))
        out["image"][i] = qi
        if arc is not None:
            qa = quantize(arc, steps)
            da = np.abs(qa.astype(float) - arc).reshape(NB, -1).max(axis=1)
            worst["arc_max_abs_over_sigma"] = max(worst["arc_max_abs_over_sigma"], float((da / sig).max()))
            out["arc"][i] = qa
        qv = round_mantissa(iv)
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
    if bss:
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
    q16, worst16 = transform(rows, "q16")
    qabs, worst_abs = transform(rows, "abs")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        w = Path(tmp)
        lists = table_lists(rows)
        results["current"] = measure("current", lists, read_lists, w, args.repeats, n,
                                     compression="zstd", level=3, bss=False)
        results["seed"] = measure("seed", table_npz(rows), read_npz, w, args.repeats, n,
                                  compression="gzip", level=None, bss=False)
        results["bss"] = measure("bss", lists, read_lists, w, args.repeats, n, compression="zstd", level=3, bss=True)
        t16 = table_lists(q16)
        results["q16+bss"] = measure("q16bss", t16, read_lists, w, args.repeats, n, compression="zstd", level=3, bss=True)
        results["abs+bss"] = measure("absbss", table_lists(qabs), read_lists, w, args.repeats, n,
                                     compression="zstd", level=3, bss=True)
        results["q16+bss+z9"] = measure("q16bssz9", t16, read_lists, w, args.repeats, n,
                                        compression="zstd", level=9, bss=True)
    load1 = os.getloadavg()
    bounds = {
        "current": "lossless", "seed": "lossless", "bss": "lossless",
        "q16+bss": f"image/arc: |change| <= step/2 <= sigma/32 per pixel (measured max {worst16['image_max_abs_over_sigma']:.4f} sigma "
                   f"image, {worst16['arc_max_abs_over_sigma']:.4f} sigma arc); invvar relative <= 2^-12 (measured {worst16['invvar_max_rel']:.2e})",
        "abs+bss": f"image/arc: |change| <= 2^-15 nmgy = 3.05e-5 (measured {worst_abs['image_max_abs_nmgy']:.2e}; "
                   f"{worst_abs['image_max_abs_over_sigma']:.4f} sigma); invvar relative <= 2^-12",
        "q16+bss+z9": "as q16+bss",
    }
    for k, v in results.items():
        v["bound"] = bounds[k]
    out = {
        "what": "bytes per stamp of image+invvar+arc+maskbits (file size / rows, pixel columns only) and read+decode stamps/s (one core)",
        "command": "python -m benchmarks.storage_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "host": platform.node(), "cpus": os.cpu_count(),
        "load_avg_start": [round(x, 2) for x in load0], "load_avg_end": [round(x, 2) for x in load1],
        "rows": n, "injections": n_inj, "source": args.dataset or "in-memory fixtures (inject_task)",
        "invvar_scatter": args.invvar_scatter,
        "pyarrow": pa.__version__, "results": results, "target_kb": 40,
    }
    path = Path(args.out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=1))
    print(f"{n} rows ({n_inj} injections) from {out['source']}; load {load0[0]:.2f} -> {load1[0]:.2f}")
    print(f"  {'encoding':12s} {'KB/stamp':>9s} {'image':>7s} {'invvar':>7s} {'arc':>7s} {'mask':>6s} {'read st/s':>10s}")
    for k, v in results.items():
        c = v["column_bytes_per_stamp"]
        print(f"  {k:12s} {v['kb_per_stamp']:9.1f} {c['image'] / 1000:7.1f} {c['invvar'] / 1000:7.1f} "
              f"{c['arc'] / 1000:7.1f} {c['maskbits'] / 1000:6.2f} {v['read_decode_stamps_per_s']:10.0f}")
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
