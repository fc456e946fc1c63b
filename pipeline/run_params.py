"""The run parameters: declared once, here. Everything else is derived from this table:

- the Airflow trigger form (`dhs_airflow.form.form_params()` -> the DAG's `params`): type, default,
  title, description, enum, bounds, pattern;
- the plan's validation (`dhs_airflow.form.check_form`): the same enums and bounds, plus the
  checks that need more than a JSON schema (allow-listed roots, run config files, suite names);
- the plan's defaults (`dhs_airflow.plan.DEFAULTS`);
- the step arguments (`emr_steps.steps.*_step(params)`): each builder reads these names and no
  other spelling; each parameter names the step flag it becomes;
- the `dhs` commands' flags (`dhs_cli`): `--` + the name with `-` for `_`.

One name per parameter everywhere. The step scripts also accept the seed's spellings (SPEC: the
seed's production command must run again), declared here as `seed_flags`.

Adding a run parameter: one `RunParam` entry below (and, if it reaches a step, the place in the
step script that reads it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.config import BANDS
from pipeline.injection.psf import PSF_MODELS

#: The seed's EMR cluster (phase4c_production_review.md section 3): the form's EMR defaults.
SEED_CLUSTER = {
    "release_label": "emr-7.6.0",
    "master_instance_type": "m5.xlarge",
    "master_instance_count": 1,
    "core_instance_type": "m5.2xlarge",
    "core_instance_count": 34,
    "region": "us-east-2",
    "log_uri": "s3://darkhaloscope/emr-logs/",
    "code_prefix": "s3://darkhaloscope/code/dhs/0.1.0",
}


@dataclass(frozen=True)
class RunParam:
    """One run parameter. `type` is the JSON-schema type of the trigger form's field."""

    name: str
    type: str  # "string" | "number" | "integer"
    default: Any
    title: str
    description: str = ""
    enum: tuple[str, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    pattern: str | None = None
    #: the step script flag this parameter becomes (None: the plan uses it, no step reads it)
    step_flag: str | None = None
    #: the seed's spellings of step_flag, still accepted by the step scripts
    seed_flags: tuple[str, ...] = ()

    @property
    def cli_flag(self) -> str:
        """The `dhs` flag: the name itself."""
        return "--" + self.name.replace("_", "-")

    def json_schema(self) -> dict[str, Any]:
        """Keyword arguments of Airflow's `Param` (JSON schema) for the trigger form."""
        out: dict[str, Any] = {"type": self.type, "title": self.title}
        if self.description:
            out["description"] = self.description
        for key in ("enum", "minimum", "maximum", "pattern"):
            value = getattr(self, key)
            if value is not None:
                out[key] = list(value) if key == "enum" else value
        return out


def bands_pattern(bands: tuple[str, ...] = BANDS) -> str:
    """The form's band-list pattern: known bands, comma-separated ('grz' does not match)."""
    one = "(" + "|".join(bands) + ")"
    return f"^{one}(,{one})*$"


def suite_names() -> tuple[str, ...]:
    """The gate suites a run may choose: the `<name>.yaml` files of the suites folder
    (pipeline.gate.thresholds.search_dirs), so a new suite file is a new choice."""
    from pipeline.gate.thresholds import search_dirs  # noqa: PLC0415 - the gate package is heavier than this table

    names = {p.stem for d in search_dirs() if d.is_dir() for p in d.glob("*.yaml")}
    return tuple(sorted(names))


def _params() -> tuple[RunParam, ...]:
    P = RunParam
    return (
        P("variant", "string", "demo", "Dataset variant", "Names the dataset; e.g. v5_cosmos_production",
          step_flag="--variant"),
        P("experiment_id", "string", "demo_stamp64_bandsgrz_cosmos", "Experiment id", step_flag="--experiment-id"),
        P("run_config", "string", "demo", "Run config",
          "Built-in name (demo, production) or a YAML path of the Phase 4a/4c run config", step_flag="--run-config"),
        P("backend", "string", "local", "Backend",
          "local: spark-submit on the Airflow worker; emr: a new EMR cluster, terminated at the end",
          enum=("local", "emr")),
        P("bands", "string", ",".join(BANDS), "Bands", "Comma-separated, e.g. g,r,z", pattern=bands_pattern(),
          step_flag="--bands"),
        P("psf_model", "string", "moffat", "PSF model", enum=tuple(PSF_MODELS), step_flag="--psf-model"),
        P("moffat_beta", "number", 3.5, "Moffat beta", minimum=1.01, maximum=10, step_flag="--moffat-beta"),
        P("control_frac_train", "number", 0.5, "Control fraction (train)", minimum=0, maximum=0.99,
          step_flag="--control-frac-train"),
        P("source_mode", "string", "cosmos", "Source mode", enum=("cosmos",), step_flag="--source-mode"),
        P("cosmos_bank_h5", "string", "demo_output/bank/cosmos_bank.h5", "COSMOS bank (HDF5)",
          step_flag="--cosmos-bank-h5"),
        P("manifest_uri", "string", "demo_output/manifest", "Phase 4a manifest directory",
          step_flag="--manifest-uri", seed_flags=("--parent-s3",)),
        P("coadd_cache_prefix", "string", "demo_output/survey/coadd", "DR10 coadd cache prefix",
          step_flag="--coadd-cache-prefix", seed_flags=("--coadd-s3-cache-prefix",)),
        P("output_prefix", "string", "demo_output/dataset", "Output dataset prefix",
          step_flag="--output-prefix", seed_flags=("--output-s3",)),
        P("code_prefix", "string", SEED_CLUSTER["code_prefix"], "EMR: S3 prefix of the wheel, lock and bootstrap"),
        P("emr_release_label", "string", SEED_CLUSTER["release_label"], "EMR release",
          "Must ship Spark 3.5 (emr-7.x) to match the local pyspark"),
        P("master_instance_type", "string", SEED_CLUSTER["master_instance_type"], "EMR master instance type"),
        P("core_instance_type", "string", SEED_CLUSTER["core_instance_type"], "EMR core instance type"),
        # 0: sized from the work (pipeline.sizing); the seed's 34 stays one explicit value away
        P("core_instance_count", "integer", 0, "EMR core instance count",
          "0: sized from the manifest's task count, the measured cost per stamp (docs/cost_model.md) and the "
          "target wall time; the seed used 34", minimum=0, maximum=200),
        P("target_wall_hours", "number", 2.0, "EMR target wall time (hours)",
          "The cluster is sized to finish inject + compact + validate within it", minimum=0.25, maximum=48),
        P("emr_log_uri", "string", SEED_CLUSTER["log_uri"], "EMR log URI"),
        P("local_master", "string", "local[2]", "Local Spark master"),
        P("target_file_mb", "integer", 256, "Compaction target file size (MB)", minimum=1, maximum=4096,
          step_flag="--target-file-mb"),
        P("gate_suite", "string", "demo", "Gate suite",
          "Thresholds from expectations/<suite>.yaml; 'strict' fails the demo on purpose",
          enum=suite_names(), step_flag="--gate-suite"),
    )


RUN_PARAMS: tuple[RunParam, ...] = _params()
BY_NAME: dict[str, RunParam] = {p.name: p for p in RUN_PARAMS}


def defaults() -> dict[str, Any]:
    """{name: default} of every run parameter (the trigger form's initial values)."""
    return {p.name: p.default for p in RUN_PARAMS}


def param(name: str) -> RunParam:
    return BY_NAME[name]
