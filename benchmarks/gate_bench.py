"""Gate benchmark (not a test): the full gate on a 12M-row table of the contract's scalar columns,
against a bare Spark scan of the same columns, cold (first job in a fresh JVM) and warm.

  .venv/bin/python -m benchmarks.gate_bench [--rows 12000000] [--runs 3] [--baseline-rows 1000000] [--identity manifest|rows]

1. Builds the table once (Spark range + rand expressions -> Parquet in a temp dir, reused).
2. Times the gate as validate_dataset runs it: row contract (scalar columns) fused with the profile
   (pipeline.gate.profile.profile_and_contract: 4 Spark jobs, each timed in `jobs_s`) + GX suites
   over the profile; median of --runs. The machine's load average is recorded before, after each
   run and at the end (shared 2-core VM: compare runs at similar load).
3. Baseline in the same run: the same kind of suite run directly on the rows with GX's Spark
   engine (quantiles, ranges, means, uniqueness), on --baseline-rows rows and extrapolated
   linearly to the full table (said so in the output).
4. Cold and warm against a bare scan (issue 17): two fresh JVMs (child processes, nothing else in
   them). JVM A runs the gate first (cold: JVM start excluded, Janino/JIT/class loading included),
   then the bare scan, then --runs - 1 more (gate, scan) pairs (warm). JVM B runs the bare scan
   first (cold), then the gate. Bare scan = every column of the table (the contract's scalar
   columns, which the row contract reads: types, nulls, ranges) read and decoded by Spark and
   dropped (`write.format("noop")`). Ratios: cold = gate first-in-JVM-A / scan first-in-JVM-B (each
   cold in its own fresh JVM; the same-JVM orders are recorded too), warm = median of A's warm gates
   / median of A's warm scans. Targets: <= 1.5x cold and warm, and the cold gate <= 60 s.
Writes benchmarks/results/gate.json. Targets: SPEC 10 <= 60 s for 12M rows on 2 cores; issue 17 above.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import cpu_model, write_results

RESULTS = Path(__file__).parent / "results" / "gate.json"


def table_config():
    """The run config the table is drawn from and gated against (production). Every configured range
    in the table comes from it: a table drawn from hard-coded ranges went stale when
    pipeline/configs/production.yaml moved src_dmag from 1-3 to 4-6.5 (commit 878840f), and the
    gate then failed row_contract/src_dmag_in_config_range on it - in the runs that loaded the new
    config only, because the config changed while a benchmark was running."""
    from pipeline.config import load_run_config

    return load_run_config("production")


def table_key(cfg) -> str:
    """Names the table after what it depends on, so a config change builds a new one."""
    import hashlib

    return hashlib.sha256(json.dumps([TABLE_VERSION, cfg.to_dict()], sort_keys=True, default=str).encode()).hexdigest()[:10]


#: Bump when build_table's columns or distributions change.
TABLE_VERSION = 2


def build_table(spark, path: Path, rows: int, cfg) -> None:
    """12M rows shaped like a production dataset that passes the production suite: values drawn
    inside the run config's ranges and the physics invariants (magnification 1-200, arc flux =
    0.97 x source flux x magnification), written as compaction writes (zstd, ~100 MB files)."""
    from pyspark.sql import functions as F

    from pipeline.contract import SCALAR_COLUMNS
    from pipeline.dataset import METADATA_FILE

    if (path / METADATA_FILE).exists():
        return
    r = lambda seed: F.rand(seed)  # noqa: E731
    n = F.randn
    df = spark.range(rows).withColumn("u", r(1))
    split = F.when(F.col("u") < 0.2, "train").when(F.col("u") < 0.67, "val").otherwise("test")
    ctl = (F.col("id") % 2) == 0  # control_frac 0.5 in every split (production config)
    inj = lambda e: F.when(~ctl, e)  # noqa: E731
    th_lo, th_hi = cfg.theta_e_min_arcsec, cfg.theta_e_max_arcsec
    dm_lo, dm_hi = cfg.src_dmag_min, cfg.src_dmag_max
    cols = {
        "task_id": F.concat(F.lit("t"), F.col("id").cast("string")), "run_id": F.lit("bench"),
        "variant": F.lit(cfg.variant), "experiment_id": F.lit(cfg.experiment_id),
        "pipeline_version": F.lit("bench"), "task_seed": F.col("id") * 7919, "region_split": split,
        "region_id": (F.col("id") % 1000), "brickname": F.concat(F.lit("b"), (F.col("id") % 5000).cast("string")),
        "lrg_id": F.col("id"), "ra": r(2) * 360, "dec": r(3) * 60 - 30, "lens_mag_r": 17.5 + r(4) * 3,
        "psfsize_r": 1.0 + r(5) * 0.6, "psfsize_g": 1.1 + r(6) * 0.6, "psfsize_z": 0.9 + r(7) * 0.6,
        "psfdepth_r": 23.9 + n(8) * 0.3, "is_control": ctl,
        "lens_model": F.when(ctl, "CONTROL").otherwise("SIE"),
        "theta_e_arcsec": inj(th_lo + r(9) * (th_hi - th_lo)),
        "lens_e1": inj(r(10) * 0.4 - 0.2), "lens_e2": inj(r(11) * 0.4 - 0.2),
        "shear_gamma1": inj(n(12) * 0.05), "shear_gamma2": inj(n(13) * 0.05),
        "lens_x_arcsec": inj(n(14) * 0.05), "lens_y_arcsec": inj(n(15) * 0.05),
        "cosmos_index": inj((r(16) * 20000).cast("long")), "cosmos_hlr_arcsec": inj(0.15 + r(17) * 0.75),
        "src_x_arcsec": inj(n(18) * 0.3), "src_y_arcsec": inj(n(19) * 0.3), "src_phi_rad": inj(r(20) * 3.14),
        "src_dmag": inj(dm_lo + r(21) * (dm_hi - dm_lo)), "moffat_beta": inj(F.lit(float(cfg.moffat_beta))),
        # >= 1 by construction (a lognormal around 6 alone dips below 1 in ~1e-4 of 12M rows)
        "magnification": inj(1 + F.exp(F.log(F.lit(5.0)) + n(22) * 0.5)),
        "arc_snr": inj(F.exp(F.log(F.lit(4.2)) + n(23) * 1.0)), "arc_masked_frac": inj(r(24) * 0.05),
        "cutout_ok": F.lit(True), "cutout_error": F.lit(None).cast("string"), "bad_pixel_frac": r(25) * 0.02,
    }
    df = df.select(*[e.alias(k) for k, e in cols.items()])
    inj = lambda e: F.when(~F.col("is_control"), e)  # noqa: E731 - `id` is gone after the select
    df = (df.withColumn("src_mag_r", inj(F.col("lens_mag_r") + F.col("src_dmag")))
            .withColumn("src_mag_g", inj(F.col("src_mag_r") + 0.5)).withColumn("src_mag_z", inj(F.col("src_mag_r") - 0.4)))
    for b in "grz":
        df = df.withColumn(f"psf_fwhm_{b}", inj(F.col(f"psfsize_{b}")))
        df = df.withColumn(f"arc_flux_{b}", inj(F.pow(F.lit(10.0), (22.5 - F.col(f"src_mag_{b}")) / 2.5)
                                                 * F.col("magnification") * 0.97))
    df = df.withColumn("arc_snr_peak", inj(F.col("arc_snr") / 4))
    df = df.withColumn("arc_snr_footprint", inj(F.col("arc_snr") * 3.4))
    df = (df.withColumn("cosmos_hlr_in_stamp_arcsec", inj(F.col("cosmos_hlr_arcsec") * 0.95))
            .withColumn("src_mag_f814w", inj(F.col("src_mag_r") - 0.3)).withColumn("src_redshift", inj(F.lit(2.0)))
            .withColumn("src_sed", inj(F.lit("Im"))).withColumn("src_brightening_mag", inj(F.lit(0.0))))
    # round-robin, then by split: ~12 files per split, as compaction leaves them (a repartition on
    # region_split alone made one 0.4-1 GB file per split)
    df.select(*SCALAR_COLUMNS).repartition(max(1, rows // 1_000_000)).write.mode("overwrite") \
        .option("compression", "zstd").partitionBy("region_split").parquet(str(path))
    meta = {"run_config": cfg.to_dict(), "hlr_filter_arcsec": [0.1, 1.0], "note": "gate benchmark table"}
    (path / METADATA_FILE).write_text(json.dumps(meta, indent=1, default=str))


def bench_manifest_identity(data: Path, cache: Path) -> dict:
    """The identity record `dhs manifest` would write for the table's tasks (the table stands in for
    its own manifest: one row per task), computed once with pipeline.task_identity and cached."""
    import pyarrow.dataset as pads

    from pipeline.task_identity import IDENTITY_COLUMNS, manifest_identity

    if cache.exists():
        return json.loads(cache.read_text())
    tasks = pads.dataset(str(data), format="parquet", partitioning="hive").to_table(
        columns=list(IDENTITY_COLUMNS)).to_pandas()
    ident = manifest_identity(tasks["task_id"], tasks["lrg_id"], tasks["region_split"].astype(str), tasks["is_control"])
    cache.write_text(json.dumps(ident))
    return ident


def run_gate(spark, root: Path, manifest: Path):
    """The gate as validate_dataset runs it: row contract and profile fused into three Spark jobs
    (pipeline.gate.profile.profile_and_contract), then the GX suites over the profile."""
    from pipeline.dataset import open_dataset, read_rows
    from pipeline.gate import suites
    from pipeline.gate.inputs import hlr_filter_for, manifest_identity_for, read_manifest_counts, run_config_for
    from pipeline.gate.profile import profile_and_contract
    from pipeline.gate.thresholds import load_thresholds

    t0 = time.perf_counter()
    jobs_s: dict = {}  # wall seconds of each Spark job (profile_and_contract's `timings`)
    ds = open_dataset(str(root), with_digest=False)
    manifest_doc = read_manifest_counts(str(manifest))
    # the config the table was made with, from its metadata, as validate_dataset reads it
    cfg = run_config_for(ds.metadata, manifest_doc["json"], "production")
    df = read_rows(spark, ds)
    contract, prof = profile_and_contract(df, run_config=cfg,
                                          hlr_filter_arcsec=hlr_filter_for(ds.metadata, manifest_doc["json"]),
                                          files_per_split=ds.files_per_split(), include_pixels=False,
                                          manifest_identity=manifest_identity_for(manifest_doc["json"]),
                                          timings=jobs_s)
    t1 = time.perf_counter()
    th = load_thresholds("production")
    frames = suites.metrics_frames(prof, manifest_doc["tasks_per_split"], th)
    results = suites.run_suites(*frames, th, with_drift=False)
    t2 = time.perf_counter()
    failed = [r["name"] for r in results if not r["success"]] + [k for k, v in contract.checks.items() if v["failed_rows"]]
    return {"total_s": t2 - t0, "contract_and_profile_s": t1 - t0, "suites_s": t2 - t1,
            "jobs_s": jobs_s, "rows": contract.rows, "failed_checks": failed,
            "task_identity": prof["all"]["task_identity"],
            "load_avg_1m_after": os.getloadavg()[0]}


def run_gx_on_rows(spark, root: Path, rows: int) -> float:
    """The same suite's row-level expectations run by GX's Spark engine directly on `rows` rows."""
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    import great_expectations as gx
    import great_expectations.expectations as gxe
    from pyspark.sql import functions as F

    df = spark.read.parquet(str(root)).limit(rows).cache()
    df.count()
    t0 = time.perf_counter()
    ctx = gx.get_context(mode="ephemeral")
    batch = (ctx.data_sources.add_spark("rows").add_dataframe_asset("rows")
             .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": df}))
    inj = df.where(~F.col("is_control"))
    ib = (ctx.data_sources.add_spark("inj").add_dataframe_asset("inj")
          .add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": inj}))
    exps_rows = [gxe.ExpectColumnValuesToBeUnique(column="task_id"),
                 gxe.ExpectColumnValuesToNotBeNull(column="lrg_id"),
                 gxe.ExpectColumnValuesToBeBetween(column="psfsize_r", min_value=0.8, max_value=1.7),
                 gxe.ExpectColumnMeanToBeBetween(column="is_control", min_value=0.48, max_value=0.52)]
    exps_inj = [gxe.ExpectColumnQuantileValuesToBeBetween(column="arc_snr", quantile_ranges={
                    "quantiles": [0.05, 0.25, 0.5, 0.75, 0.95],
                    "value_ranges": [[0, 1], [1.5, 2.8], [3.6, 4.8], [7, 10.5], [18, 32]]}),
                gxe.ExpectColumnValuesToBeBetween(column="theta_e_arcsec", min_value=0.5, max_value=2.5),
                gxe.ExpectColumnValuesToBeBetween(column="magnification", min_value=1, max_value=200),
                gxe.ExpectColumnValuesToBeBetween(column="cosmos_hlr_arcsec", min_value=0.1, max_value=1.0),
                gxe.ExpectColumnUniqueValueCountToBeBetween(column="cosmos_index", min_value=2000)]
    for e in exps_rows:
        batch.validate(e)
    for e in exps_inj:
        ib.validate(e)
    elapsed = time.perf_counter() - t0
    df.unpersist()
    return elapsed


def bare_scan(spark, root: Path) -> dict:
    """Read and decode every column of the table (the columns the gate reads), keep nothing: the
    floor under any full-row gate."""
    from pipeline.contract import SCALAR_COLUMNS
    from pipeline.dataset import open_dataset, read_rows

    t0 = time.perf_counter()
    ds = open_dataset(str(root), with_digest=False)
    df = read_rows(spark, ds)
    df.select(*[c for c in SCALAR_COLUMNS if c in df.columns]).write.format("noop").mode("overwrite").save()
    return {"total_s": time.perf_counter() - t0, "columns": len(df.columns), "load_avg_1m_after": os.getloadavg()[0]}


def _session(cores: str, extra: dict | None = None):
    from pipeline.spark_session import get_spark

    # the project's session factory (as `dhs validate` gets it); the bench only fixes the cores,
    # a bigger driver heap (the baseline caches 1M rows) and no UI; `extra`: --spark-conf experiments
    spark = get_spark("gate-bench", f"local[{cores}]",
                      conf={"spark.driver.memory": "4g", "spark.ui.enabled": "false", **(extra or {})})
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def child(order: str, work: Path, runs: int, cores: str, extra: dict | None = None, prefetch_gx: bool = True) -> dict:
    """One fresh JVM: the first measurement in it is cold. order: gate-first or scan-first.
    prefetch_gx: import great_expectations in the background from the start, as the validation step
    (emr_steps/validate.py) does, so the cold gate does not wait for it after its Spark jobs."""
    t0 = time.perf_counter()
    if prefetch_gx:
        from emr_steps.validate import prefetch_suite_imports

        prefetch_suite_imports()
    spark = _session(cores, extra)
    jvm_s = time.perf_counter() - t0
    steps = {"gate-first": ["gate", "scan"], "scan-first": ["scan", "gate"]}[order]
    seq = []
    for i in range(runs if order == "gate-first" else 1):
        for what in steps:
            r = run_gate(spark, work, work / "manifest") if what == "gate" else bare_scan(spark, work)
            seq.append({"what": what, "run": i, **r})
            print(f"  [{order} JVM] {what} run {i}: {r['total_s']:.1f} s (load {os.getloadavg()[0]:.1f})",
                  file=sys.stderr, flush=True)
    spark.stop()
    return {"order": order, "session_start_s": round(jvm_s, 2), "sequence": seq}


def fresh_jvm(order: str, work: Path, runs: int, cores: str, extra: dict | None = None, prefetch_gx: bool = True) -> dict:
    import subprocess

    code = ("import json, sys; from pathlib import Path; from benchmarks.gate_bench import child; "
            "print('GATE_BENCH_CHILD ' + json.dumps(child(sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), sys.argv[4], "
            "json.loads(sys.argv[5]), sys.argv[6] == '1')))")
    proc = subprocess.run([sys.executable, "-c", code, order, str(work), str(runs), cores, json.dumps(extra or {}),
                           "1" if prefetch_gx else "0"],
                          stdout=subprocess.PIPE,
                          text=True, cwd=str(Path(__file__).resolve().parents[1]))
    if proc.returncode != 0:
        raise SystemExit(f"gate bench child ({order}) failed, exit {proc.returncode}")
    line = [ln for ln in proc.stdout.splitlines() if ln.startswith("GATE_BENCH_CHILD ")][-1]
    return json.loads(line.split(" ", 1)[1])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=12_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--baseline-rows", type=int, default=1_000_000)
    p.add_argument("--workdir", default=os.path.join(tempfile.gettempdir(), "dhs_gate_bench"))
    p.add_argument("--cores", default="2")
    p.add_argument("--out", default=str(RESULTS))
    p.add_argument("--identity", choices=("manifest", "rows"), default="manifest",
                   help="manifest: manifest.json carries the task identity record, as `dhs manifest` writes it "
                        "(the gate checks ids and leakage in its first scan); rows: it does not (the gate's "
                        "exact shuffle, job 3)")
    p.add_argument("--no-cold", action="store_true", help="skip the fresh-JVM cold/warm comparison with the bare scan")
    p.add_argument("--scan-first", action=argparse.BooleanOptionalAction, default=True,
                   help="also run the bare scan first in its own fresh JVM (the cold scan); without it the cold ratio "
                        "uses the scan that follows the cold gate in the same JVM")
    p.add_argument("--spark-conf", action="append", default=[], metavar="KEY=VALUE",
                   help="extra Spark setting for every session of the run (experiments; recorded in the results)")
    p.add_argument("--prefetch-gx", action=argparse.BooleanOptionalAction, default=True,
                   help="in the fresh JVMs, import great_expectations in the background from the start, as the "
                        "validation step does (emr_steps/validate.py); --no-prefetch-gx: on the critical path")
    p.add_argument("--cold-only", action="store_true",
                   help="only the gate-first fresh JVM with one gate + scan (cold A/B experiments)")
    args = p.parse_args(argv)
    extra = dict(kv.split("=", 1) for kv in args.spark_conf)
    spark = _session(args.cores, extra)
    load_before = os.getloadavg()[0]
    cfg = table_config()
    work = Path(args.workdir) / f"rows_{args.rows}_{table_key(cfg)}"
    data = work / "phase4c"
    t = time.perf_counter()
    build_table(spark, data, args.rows, cfg)
    build_s = time.perf_counter() - t
    counts = {r["region_split"]: r["count"] for r in spark.read.parquet(str(data)).groupBy("region_split").count().collect()}
    (work / "manifest").mkdir(exist_ok=True)
    manifest_doc = {"tasks_per_split": counts}
    if args.identity == "manifest":
        manifest_doc["identity"] = bench_manifest_identity(data, work / "manifest" / "identity.json")
    (work / "manifest" / "manifest.json").write_text(json.dumps(manifest_doc))

    out = {
        "command": "python -m benchmarks.gate_bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "rows": args.rows, "cores": args.cores, "identity": args.identity, "host": platform.node(),
        "machine": {"cpu": cpu_model(), "vcpus": os.cpu_count()},
        "load_avg_1m_before": load_before,
        "note": "load averages recorded before, after each run and at the end",
        "table_build_s": round(build_s, 1), "spark_conf_extra": extra,
        "prefetch_gx": args.prefetch_gx,
    }
    if not args.no_cold:
        # the fresh JVMs first, while this process's JVM is idle (it holds no cached data)
        a_jvm = fresh_jvm("gate-first", work, 1 if args.cold_only else args.runs, args.cores, extra, args.prefetch_gx)
        b_jvm = (fresh_jvm("scan-first", work, 1, args.cores, extra, args.prefetch_gx)
                 if args.scan_first and not args.cold_only else None)
        seq_a = a_jvm["sequence"]
        seq_b = b_jvm["sequence"] if b_jvm else []
        gate_cold = seq_a[0]["total_s"]
        scan_cold = seq_b[0]["total_s"] if seq_b else seq_a[1]["total_s"]
        warm_g = [r["total_s"] for r in seq_a if r["what"] == "gate" and r["run"] > 0]
        warm_s = [r["total_s"] for r in seq_a if r["what"] == "scan" and r["run"] > 0]
        cold = {
            "gate_cold_s": round(gate_cold, 2), "scan_cold_s": round(scan_cold, 2),
            "ratio": round(gate_cold / scan_cold, 3), "target_ratio": 1.5, "met_ratio": gate_cold / scan_cold <= 1.5,
            "target_gate_s": 60, "met_gate_s": gate_cold <= 60,
            "same_jvm": {"gate_first_then_scan_s": [round(gate_cold, 2), round(seq_a[1]["total_s"], 2)],
                         "scan_first_then_gate_s": ([round(scan_cold, 2), round(seq_b[1]["total_s"], 2)] if seq_b else None)},
            "scan_cold_from": "scan-first JVM" if seq_b else "the scan after the cold gate, same JVM",
            "cold_gate_jobs_s": seq_a[0]["jobs_s"],
            "session_start_s": [a_jvm["session_start_s"], b_jvm["session_start_s"] if b_jvm else None],
        }
        warm = None
        if warm_g and warm_s:
            g, sc = statistics.median(warm_g), statistics.median(warm_s)
            warm = {"gate_s": [round(x, 2) for x in warm_g], "scan_s": [round(x, 2) for x in warm_s],
                    "gate_median_s": round(g, 2), "scan_median_s": round(sc, 2), "ratio": round(g / sc, 3),
                    "target_ratio": 1.5, "met_ratio": g / sc <= 1.5, "warm_gate_jobs_s": seq_a[2]["jobs_s"]}
        out["cold_vs_scan"] = cold
        out["warm_vs_scan"] = warm
        out["fresh_jvm_runs"] = {"gate-first": seq_a, "scan-first": seq_b}
        print(f"cold (first job in a fresh JVM): gate {gate_cold:.1f} s vs bare scan {scan_cold:.1f} s = "
              f"{gate_cold / scan_cold:.2f}x (target <= 1.5x: {'met' if cold['met_ratio'] else 'NOT met'}); "
              f"gate {gate_cold:.1f} s (target <= 60 s: {'met' if cold['met_gate_s'] else 'NOT met'})", flush=True)
        if warm:
            print(f"warm: gate median {warm['gate_median_s']:.1f} s vs bare scan {warm['scan_median_s']:.1f} s = "
                  f"{warm['ratio']:.2f}x (target <= 1.5x: {'met' if warm['met_ratio'] else 'NOT met'})", flush=True)
        gate_runs = [r for r in seq_a if r["what"] == "gate"]
    else:
        gate_runs = [run_gate(spark, work, work / "manifest") for _ in range(args.runs)]
    gate_s = statistics.median(r["total_s"] for r in gate_runs)
    out.update({"gate_median_s": round(gate_s, 2), "gate_runs": gate_runs, "target_s": 60, "meets_target": gate_s <= 60})
    if args.baseline_rows > 0:
        base_rows = min(args.baseline_rows, args.rows)
        base_s = run_gx_on_rows(spark, data, base_rows)
        base_full_s = base_s * args.rows / base_rows
        out["baseline"] = {"what": "GX Spark engine directly on the rows (quantiles, ranges, means, uniqueness)",
                           "rows": base_rows, "seconds": round(base_s, 2),
                           "extrapolated_full_s": round(base_full_s, 1), "extrapolated": base_rows < args.rows}
        out["speedup_vs_baseline"] = round(base_full_s / gate_s, 2)
        print(f"baseline GX-on-Spark rows: {base_s:.1f} s on {base_rows:,} rows -> ~{base_full_s:.0f} s extrapolated "
              f"to {args.rows:,} rows; ratio {base_full_s / gate_s:.1f}x")
    out["load_avg_1m"] = os.getloadavg()[0]
    path = write_results(args.out, out)
    print(f"gate on {args.rows:,} rows: median {gate_s:.1f} s over {len(gate_runs)} runs "
          f"(last: contract + profile {gate_runs[-1]['contract_and_profile_s']:.1f} s {gate_runs[-1]['jobs_s']}, "
          f"suites {gate_runs[-1]['suites_s']:.1f} s)")
    print(f"written {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
