"""Turn the DAG's trigger form into the run's step definitions, for both backends.

The form's values are checked here, before anything starts: a bad band list, run config or an
output prefix outside the allowed roots fails the `plan` task with a message naming the field.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from dhs_airflow.form import check_form
from emr_steps import steps
from pipeline import run_params, sizing, storage
from pipeline.config import allowed_output_roots as configured_output_roots
from pipeline.config import check_output_prefix as config_check_output_prefix
from pipeline.config import load_run_config, parse_bands
from pipeline.gate.promote import last_promotion_of
from pipeline.gate.thresholds import check_suite_policy
from pipeline.lineage import safe_run_name
from pipeline.manifest import task_count
from pipeline.errors import InputError

STEPS = ("inject", "compact", "validate")
_STEP_BUILDERS = {"inject": steps.inject_step, "compact": steps.compact_step, "validate": steps.validate_step}

#: the trigger form's initial values, from the one run-parameter table (pipeline.run_params)
DEFAULTS = run_params.defaults()


def allowed_output_roots() -> list[str]:
    """Where a run may write: DHS_ALLOWED_OUTPUT_ROOTS (comma-separated local roots or s3:// prefixes).
    Unset means the production bucket and the working directory: the DAG always limits writes."""
    return configured_output_roots(default=f"s3://darkhaloscope/,{Path.cwd()}")


def check_output_prefix(prefix: str) -> str:
    """Refuse an output prefix outside the allowed roots (a typo must not write anywhere else);
    the same rule as the `dhs` commands (pipeline.config.check_output_prefix)."""
    return config_check_output_prefix(prefix, source="output_prefix", roots=allowed_output_roots())


#: the run's name in paths and step arguments (pipeline.lineage)
_safe_run_name = safe_run_name


def drift_reference(output_prefix: str, run_config_variant: str) -> str | None:
    """profile.json of the last promotion of this run config variant on this dataset prefix (from
    its promotion history), or None for the first one (the report then says "no reference")."""
    last = last_promotion_of(output_prefix, run_config_variant)
    if not last:
        return None
    uri = (last.get("validation") or {}).get("profile_uri")
    if not uri or not storage.exists(uri):
        raise InputError(f"{output_prefix}/promotions/{int(last['sequence']):06d}.json",
                         f"the last promotion of {run_config_variant!r} cites a profile that is gone ({uri}): "
                         "drift cannot be checked")
    return uri


def start_run(params: dict, airflow_run_id: str | None = None) -> dict:
    """The DAG's plan task: read the manifest's task count (for the cluster size), check and plan
    the run (`plan_run`, no I/O), then find the drift reference (the last promotion of the same
    variant on this prefix, a read). The prefix's lock is the next task's (dhs_airflow.lock)."""
    stamps = task_count(check_form(params)["manifest_uri"])
    plan = plan_run(params, airflow_run_id, stamps=stamps)
    reference = drift_reference(plan["dataset_uri"], plan["variant"])
    if reference:
        plan = plan_run(params, airflow_run_id, reference_profile=reference, stamps=stamps)
    return plan


def local_cores(master: str) -> int | None:
    """Cores of a local[N] / local[*] master; None for a cluster master (its size is its own)."""
    m = re.fullmatch(r"local\[(\d+|\*)\]", master)
    if not m:
        return None
    return (os.cpu_count() or 1) if m.group(1) == "*" else int(m.group(1))


def size_cluster(params: dict, stamps: int | None) -> dict | None:
    """The EMR core group for this run (pipeline.sizing): sized from the work when
    core_instance_count is 0, else the explicit count with what the work would have needed. None
    for the local backend, or when the task count is unknown (plan_run called without a manifest)."""
    if params["backend"] != "emr":
        return None
    if stamps is None:
        if int(params["core_instance_count"]) == 0:
            raise InputError("core_instance_count", "0 (size from the work) needs the manifest's task count")
        return None
    explicit = int(params["core_instance_count"]) or None
    return sizing.plan_cluster(stamps, target_wall_hours=float(params["target_wall_hours"]),
                               core_instance_type=params["core_instance_type"],
                               core_instance_count=explicit).as_dict()


def plan_run(params: dict, airflow_run_id: str | None = None, *, reference_profile: str | None = None,
             stamps: int | None = None) -> dict:
    """Everything the DAG's tasks need, as JSON-able values (pushed to XCom one key each). Pure:
    reads the run config and suite files, touches no dataset (`start_run` does that and passes the
    manifest's task count as `stamps`)."""
    params = check_form(params)  # every value checked, undeclared keys refused (dhs_airflow.form)
    backend = params["backend"]
    if backend not in ("local", "emr"):
        raise InputError("backend", f"must be 'local' or 'emr', got {backend!r}")
    params["bands"] = ",".join(parse_bands(str(params["bands"]), source="bands"))
    run_config = load_run_config(params["run_config"])  # fails early, naming the file and key
    # the weakest suite this run config may be promoted under: refused here, before any Spark
    check_suite_policy(params["gate_suite"], run_config.min_gate_suite, source="gate_suite")
    if backend == "emr":
        for key in ("manifest_uri", "coadd_cache_prefix", "cosmos_bank_h5", "output_prefix", "code_prefix"):
            if not storage.is_s3(str(params[key])):
                raise InputError(key, f"the emr backend needs an s3:// URI, got {params[key]!r}")
    params["output_prefix"] = check_output_prefix(str(params["output_prefix"]))
    run_name = _safe_run_name(airflow_run_id)
    params["pipeline_run"] = run_name  # every step leaves its receipt under D/runs/<run> (pipeline.lineage)
    params["validation_uri"] = storage.join(params["output_prefix"], "validation", run_name)
    params["force"] = True  # the seed's pair: keep a complete output of this very run, redo anything else
    params["skip_if_exists"] = True
    params["reference_profile"] = reference_profile
    cluster = size_cluster(params, stamps)
    cores = local_cores(params["local_master"])
    planned = {"emr": cluster["planned_inject_core_hours"] if cluster else None,
               "local": sizing.planned_step_core_hours("inject", stamps, cores)
               if stamps is not None and cores else None}

    definitions = {backend_: {name: _STEP_BUILDERS[name]({**params, "planned_core_hours": planned[backend_]})
                              for name in STEPS} for backend_ in ("emr", "local")}
    python = sys.executable
    plan = {
        "backend": backend,
        "dataset_uri": params["output_prefix"],
        "pipeline_run": run_name,
        # the form's variant names the dataset (it overrides the run config's, as the inject step
        # does): drift is checked against the last promotion of the same variant
        "variant": params["variant"],
        "validation_uri": params["validation_uri"],
        "reference_profile": params["reference_profile"],
        "gate_suite": params["gate_suite"],
        "region_name": steps.DEFAULT_REGION,
        "job_flow_overrides": steps.default_job_flow_overrides(
            name=f"dhs-phase4-{params['variant']}-{run_name}"[:250],
            release_label=params["emr_release_label"],
            master_instance_type=params["master_instance_type"],
            core_instance_type=params["core_instance_type"],
            core_instance_count=cluster["core_instance_count"] if cluster else int(params["core_instance_count"]) or 1,
            log_uri=params["emr_log_uri"],
            code_prefix=params["code_prefix"],
            tags={"variant": params["variant"], "airflow_run": run_name},
        ),
        "local_env": steps.local_env(python),
        "cluster": cluster,
    }
    for name in STEPS:
        plan[f"emr_{name}"] = [steps.to_emr_step(definitions["emr"][name], params["code_prefix"])]
        plan[f"local_{name}"] = steps.to_local_argv(definitions["local"][name], python=python, master=params["local_master"])
    return plan
