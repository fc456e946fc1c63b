"""The row contract: every row of a dataset checked against `pipeline.contract` and the run config.

Two layers:
- pandera (`pandera.pyspark`) checks the schema: every contract column present with its type.
- every row-level rule is a named Spark predicate that is true on a *violating* row; all of them
  are counted in ONE aggregate pass (pandera's Spark backend runs one job per check per column,
  ~60 jobs here, which alone would blow the 60 s budget for 12M rows). Uniqueness of task_id
  needs its own group-by (on xxhash64(task_id), confirmed on task_id when a hash repeats).
  Example task_ids are fetched only for checks that failed.
The gate (`validate_dataset`) runs these counters inside the profile's jobs instead
(`pipeline.gate.profile.profile_and_contract`): one scan of the rows for both;
`check_row_contract` runs the contract alone.

Check names (stable; the failure messages and validation.json use them):
  schema, unique_task_id, not_null:<col>, control_has_no_injection_params,
  injection_has_all_params, lens_model_matches_label, cutout_error_iff_failed,
  pixels_present_when_ok, pixel_length:<col>, pixels_finite:<col>, invvar_nonnegative,
  region_split_known, theta_e_in_config_range, src_dmag_in_config_range,
  moffat_beta_matches_config, psfsize_positive, fractions_in_0_1, lens_ellipticity_below_1,
  cosmos_index_nonnegative, sky_position_valid, arc_snr_finite, pixels_agree:psf_fwhm_<band>.
Added by the gate outside this scan: matches_manifest, pixels_agree:<pixel-derived quantity>,
pixels_agree:band_order (pipeline.gate.validate.add_identity_and_pixel_checks).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pyspark.sql import functions as F

from pipeline.config import SPLITS, RunConfig
from pipeline.contract import BANDS, BY_NAME, COLUMNS, INJECTION_ONLY, PIXEL_COLUMNS, STAMP_SIZE_PIX
from pipeline.gate.identity import uniqueness_and_leakage
from pipeline.gate.pixel_agreement import psf_disagreement_predicates
from pipeline.spark_session import spark_type

#: Columns that are never null (contract: nullable=False).
REQUIRED_COLUMNS = tuple(c.name for c in COLUMNS if not c.nullable)
#: Relative slack on config ranges: values are drawn in float64 and written as such, so only
#: rounding can push them past a bound.
_RANGE_SLACK = 1e-9


def pandera_schema(include_pixels: bool = True):
    """The contract as a pandera.pyspark schema: presence and type of every column.
    Nullability is checked in the one-pass predicates instead (see module docstring)."""
    import pandera.pyspark as pa_spark

    cols = [c for c in COLUMNS if include_pixels or c.name not in PIXEL_COLUMNS]
    return pa_spark.DataFrameSchema(
        {c.name: pa_spark.Column(spark_type(c.type), nullable=True) for c in cols},
        name="phase4c_row_contract",
    )


#: Without these columns no row rule can be evaluated.
KEY_COLUMNS = frozenset({"task_id", "is_control", "cutout_ok", "lens_model", "cutout_error", "region_split"})


def schema_errors(df, include_pixels: bool) -> list[str]:
    from pandera.config import ValidationDepth, config_context

    import pyspark.sql.types as T

    # pandera compares ArrayType including containsNull; Parquet lists always read back as
    # containsNull=true, so compare element types only.
    schema = pandera_schema(include_pixels)
    # presence and types need only the schema: validate an empty frame so pandera's error
    # reporting never pulls a row (with pixels) to the driver
    with config_context(validation_depth=ValidationDepth.SCHEMA_ONLY):
        out = schema.validate(df.limit(0))
    errors = []
    for kind, items in (out.pandera.errors or {}).get("SCHEMA", {}).items():
        for item in items:
            col = item.get("column")
            if kind == "WRONG_DATATYPE" and isinstance(df.schema[col].dataType, T.ArrayType):
                want = spark_type(BY_NAME[col].type)
                if df.schema[col].dataType.elementType == want.elementType:
                    continue
            errors.append(f"{kind}: {item.get('error')}")
    return errors


def row_predicates(run_config: RunConfig, columns: list[str]) -> dict:
    """check name -> Spark Column, true on a row that VIOLATES the check. Only checks whose
    columns are present are returned (the benchmark runs on scalar columns only)."""
    present = set(columns)
    col = F.col
    inj_ok = (~col("is_control")) & col("cutout_ok")
    checks = {}

    for name in REQUIRED_COLUMNS:
        if name in present:
            checks[f"not_null:{name}"] = col(name).isNull()

    inj_cols = [c for c in INJECTION_ONLY if c in present]
    checks["control_has_no_injection_params"] = col("is_control") & F.greatest(
        *[col(c).isNotNull() for c in inj_cols], F.lit(False))
    checks["injection_has_all_params"] = inj_ok & F.greatest(*[col(c).isNull() for c in inj_cols], F.lit(False))
    checks["lens_model_matches_label"] = col("is_control") != (col("lens_model") == F.lit("CONTROL"))
    checks["cutout_error_iff_failed"] = col("cutout_ok") == col("cutout_error").isNotNull()
    checks["region_split_known"] = ~col("region_split").isin(*SPLITS)

    n_stamp = len(BANDS) * STAMP_SIZE_PIX * STAMP_SIZE_PIX
    want_len = {"image": n_stamp, "invvar": n_stamp, "arc": n_stamp, "maskbits": STAMP_SIZE_PIX * STAMP_SIZE_PIX}
    pix = [c for c in PIXEL_COLUMNS if c in present]
    if pix:
        checks["pixels_present_when_ok"] = col("cutout_ok") & F.greatest(
            *[col(c).isNull() for c in ("image", "invvar", "maskbits") if c in present], F.lit(False))
    for c in pix:
        checks[f"pixel_length:{c}"] = col(c).isNotNull() & (F.size(col(c)) != want_len[c])
    inf = F.lit(float("inf"))
    for c in ("image", "invvar", "arc"):
        if c in present:
            # Spark orders NaN above +inf, so an array holds a NaN or +inf iff its max is NaN or
            # +inf, and -inf iff its min is -inf. array_max/array_min are code-generated loops;
            # exists(x -> ...) evaluates an interpreted lambda per pixel (12,288 per column per row).
            hi, lo = F.array_max(col(c)), F.array_min(col(c))
            checks[f"pixels_finite:{c}"] = F.isnan(hi) | (hi == inf) | (lo == -inf)
    if "invvar" in present:
        checks["invvar_nonnegative"] = F.array_min(col("invvar")) < 0

    def outside(c, lo, hi):
        slack = _RANGE_SLACK * max(abs(lo), abs(hi), 1.0)
        return col(c).isNotNull() & (F.isnan(col(c)) | (col(c) < lo - slack) | (col(c) > hi + slack))

    rc = run_config
    checks["theta_e_in_config_range"] = outside("theta_e_arcsec", rc.theta_e_min_arcsec, rc.theta_e_max_arcsec)
    checks["src_dmag_in_config_range"] = outside("src_dmag", rc.src_dmag_min, rc.src_dmag_max)
    checks["moffat_beta_matches_config"] = outside("moffat_beta", rc.moffat_beta, rc.moffat_beta)
    checks["psfsize_positive"] = F.greatest(*[
        col(c).isNotNull() & ~(col(c) > 0) for c in (*(f"psfsize_{b}" for b in BANDS), "psf_fwhm_r")])
    checks["fractions_in_0_1"] = outside("bad_pixel_frac", 0, 1) | outside("arc_masked_frac", 0, 1)
    checks["lens_ellipticity_below_1"] = col("lens_e1").isNotNull() & ~(
        F.sqrt(col("lens_e1") ** 2 + col("lens_e2") ** 2) < 1)
    checks["cosmos_index_nonnegative"] = col("cosmos_index") < 0
    checks["sky_position_valid"] = outside("ra", 0, 360) | outside("dec", -90, 90)
    checks["arc_snr_finite"] = col("arc_snr").isNotNull() & (
        F.isnan(col("arc_snr")) | (F.abs(col("arc_snr")) == F.lit(float("inf"))))
    # the PSF actually used is the survey's at the stamp centre, rounded to the kernel grid
    # (pipeline.gate.pixel_agreement); counted in the fused scan with the other row rules
    checks.update(psf_disagreement_predicates(present))
    # a NULL predicate (null input) counts as no violation
    return {k: F.coalesce(v, F.lit(False)) for k, v in checks.items()}


@dataclass
class ContractResult:
    passed: bool
    rows: int
    schema_errors: list[str] = field(default_factory=list)
    #: check name -> {"failed_rows": int, "examples": [task_id, ...]}
    checks: dict = field(default_factory=dict)

    def failures(self) -> list[str]:
        out = [f"row_contract/schema: {e}" for e in self.schema_errors]
        for name, r in self.checks.items():
            if r.get("problem"):  # a dataset-level finding (no row count): its own sentence
                out.append(f"row_contract/{name}: {r['problem']}")
            elif r["failed_rows"]:
                out.append(f"row_contract/{name}: {r['failed_rows']} of {self.rows} rows fail "
                           f"(e.g. task_id {', '.join(map(str, r['examples']))})")
        return out

    def add_check(self, name: str, result: dict) -> None:
        """Add a check computed outside the fused scan (pixel agreement, manifest identity)."""
        self.checks[name] = result
        if result.get("failed_rows") or result.get("problem"):
            self.passed = False

    def to_dict(self) -> dict:
        return {"passed": self.passed, "rows": self.rows, "schema_errors": self.schema_errors,
                "checks": self.checks, "failures": self.failures()}


def contract_result(df, schema_errors_: list[str], preds: dict, counts: list[int], *, rows: int,
                    dup_rows: int, dup_examples: list, n_examples: int = 3) -> ContractResult:
    """ContractResult from the violation counts of `preds` (in order); fetches example task_ids
    of failed checks only."""
    checks = {}
    for n, (name, pred) in zip(counts, preds.items()):
        examples = []
        if n:
            examples = [r[0] for r in df.filter(pred).select("task_id").limit(n_examples).collect()]
        checks[name] = {"failed_rows": int(n), "examples": examples}
    checks["unique_task_id"] = {"failed_rows": int(dup_rows), "examples": list(dup_examples) if dup_rows else []}
    passed = not schema_errors_ and all(r["failed_rows"] == 0 for r in checks.values())
    return ContractResult(passed, rows, schema_errors_, checks)


def check_row_contract(df, run_config: RunConfig, *, include_pixels: bool = True, n_examples: int = 3) -> ContractResult:
    """Check every row of `df` (Spark DataFrame with region_split) against the contract."""
    errors = schema_errors(df, include_pixels)
    if KEY_COLUMNS - set(df.columns):
        # without these columns no row rule can be evaluated; the schema errors say why
        return ContractResult(False, -1, errors, {})
    preds = row_predicates(run_config, df.columns)
    aggs = [F.count(F.lit(1)).alias("__rows")]
    aggs += [F.sum(v.cast("long")).alias(f"c{i}") for i, v in enumerate(preds.values())]
    row = df.agg(*aggs).first()
    uniq = uniqueness_and_leakage(df, leakage=False, n_examples=n_examples)
    return contract_result(df, errors, preds, [int(row[f"c{i}"] or 0) for i in range(len(preds))],
                           rows=int(row["__rows"]), dup_rows=uniq["dup_rows"], dup_examples=uniq["dup_examples"],
                           n_examples=n_examples)
