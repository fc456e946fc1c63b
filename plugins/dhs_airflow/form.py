"""The one validation of every trigger-form value, before any Spark or EMR call.

Airflow checks the form's JSON schema in the UI, but a run can be triggered through the REST API
or the CLI with any `conf`, and Airflow merges undeclared keys into the params. So `check_form`
re-checks every value here, on the worker, and refuses anything not declared:

- undeclared keys (e.g. `run_id`, which would move the compaction outside the output roots);
- any string starting with `-` (it would become a spark-submit or entry-script option), or
  holding control characters;
- ids (variant, experiment_id) outside a safe alphabet;
- `run_config`: a built-in name, or a YAML file under $DHS_RUN_CONFIG_DIR (never any file on
  the worker; errors never quote the file);
- `local_master`: `local[N]` / `local[*]`, or one of $DHS_ALLOWED_SPARK_MASTERS;
- `code_prefix` (its bootstrap.sh runs as root on every EMR node with the instance role) under
  $DHS_ALLOWED_CODE_ROOTS; `emr_log_uri` under $DHS_ALLOWED_LOG_ROOTS; `output_prefix` under
  $DHS_ALLOWED_OUTPUT_ROOTS; every S3 URI normalised (no `..`, `.`, `//`, `%`-encoded segments);
- enums, numeric ranges, EMR release and instance-type spellings.

Every error is an InputError naming the field; none quotes a file's contents.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Mapping

from pipeline import run_params, sizing, storage
from pipeline.config import CONFIG_DIR, allowed_output_roots, check_output_prefix, load_run_config, parse_bands
from pipeline.errors import InputError

CODE_ROOTS_ENV = "DHS_ALLOWED_CODE_ROOTS"
LOG_ROOTS_ENV = "DHS_ALLOWED_LOG_ROOTS"
SPARK_MASTERS_ENV = "DHS_ALLOWED_SPARK_MASTERS"
RUN_CONFIG_DIR_ENV = "DHS_RUN_CONFIG_DIR"
#: Unset roots mean the seed's bucket prefixes: a run can never name any other bucket's code.
DEFAULT_CODE_ROOTS = "s3://darkhaloscope/code/"
DEFAULT_LOG_ROOTS = "s3://darkhaloscope/emr-logs/"

SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
SUITE_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
LOCAL_MASTER = re.compile(r"local\[(\*|[1-9][0-9]{0,2})\]")
EMR_RELEASE = re.compile(r"emr-7\.[0-9]{1,2}\.[0-9]{1,2}")  # emr-7.x ships Spark 3.5, as the local pyspark
INSTANCE_TYPE = re.compile(r"[a-z][a-z0-9-]{0,15}\.[a-z0-9]{1,16}")

#: checked by their own rule below (allow-lists, files, suite names), not only by the schema's enum
_OWN_RULE = ("gate_suite",)
ENUMS = {p.name: p.enum for p in run_params.RUN_PARAMS if p.enum and p.name not in _OWN_RULE}
#: (min, max) inclusive, as in the trigger form (pipeline.run_params)
NUMBERS = {p.name: (float(p.minimum), float(p.maximum)) for p in run_params.RUN_PARAMS if p.type == "number"}
INTEGERS = {p.name: (int(p.minimum), int(p.maximum)) for p in run_params.RUN_PARAMS if p.type == "integer"}
INPUT_URIS = ("cosmos_bank_h5", "manifest_uri", "coadd_cache_prefix")


def _roots(env: str, default: str) -> list[str]:
    return allowed_output_roots(default=default, env=env)


def _string(field: str, value: Any) -> str:
    if not isinstance(value, str):
        raise InputError(field, f"must be a string, got {type(value).__name__}")
    if not value:
        raise InputError(field, "must not be empty")
    if value.startswith("-"):
        raise InputError(field, "must not start with '-' (it would be read as a command-line option)")
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in value):
        raise InputError(field, "must not contain control characters")
    return value


def _number(field: str, value: Any, lo: float, hi: float, integer: bool) -> float | int:
    if isinstance(value, bool):
        raise InputError(field, "must be a number")
    try:
        number = int(value) if integer and not isinstance(value, float) else float(value)
    except (TypeError, ValueError):
        raise InputError(field, "must be " + ("an integer" if integer else "a number")) from None
    if integer and isinstance(value, float) and not value.is_integer():
        raise InputError(field, "must be an integer")
    if isinstance(number, float) and not math.isfinite(number):
        raise InputError(field, "must be finite")
    if not lo <= number <= hi:
        raise InputError(field, f"must be between {lo} and {hi}, got {number}")
    return int(number) if integer else number


def check_run_config(value: str) -> str:
    """A built-in name (pipeline/configs/<name>.yaml), or a .yaml file under $DHS_RUN_CONFIG_DIR.
    Errors name the field only: the file may be anything the worker can read."""
    value = _string("run_config", value)
    builtins = sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))
    if value in builtins:
        load_run_config(value)
        return value
    config_dir = os.environ.get(RUN_CONFIG_DIR_ENV)
    where = f"or a .yaml file under ${RUN_CONFIG_DIR_ENV} ({config_dir})" if config_dir else \
        f"(set ${RUN_CONFIG_DIR_ENV} to allow run config files)"
    refused = f"got {value[:200]!r}: must be a built-in name ({', '.join(builtins)}) {where}"
    if not config_dir or Path(value).suffix not in (".yaml", ".yml"):
        raise InputError("run_config", refused)
    root = Path(config_dir).resolve()
    path = (root / value).resolve()  # an absolute value replaces root; checked just below
    if root not in path.parents:
        raise InputError("run_config", refused)
    if not path.is_file():
        raise InputError("run_config", f"no such file under ${RUN_CONFIG_DIR_ENV}: {path.relative_to(root)}")
    try:
        load_run_config(path)
    except InputError:
        # the loader's message quotes the YAML (keys, snippets): say only which field is wrong
        raise InputError("run_config", f"{path.relative_to(root)} is not a valid run config "
                                       "(check it with `dhs manifest --run-config FILE`)") from None
    return str(path)


def check_local_master(value: str) -> str:
    value = _string("local_master", value)
    allowed = [m.strip() for m in os.environ.get(SPARK_MASTERS_ENV, "").split(",") if m.strip()]
    if LOCAL_MASTER.fullmatch(value) or value in allowed:
        return value
    raise InputError("local_master", "must be local[N] (N = 1..999) or local[*]"
                                     + (f" or one of ${SPARK_MASTERS_ENV}" if allowed else
                                        f" (set ${SPARK_MASTERS_ENV} to allow a cluster master)"))


def check_gate_suite(value: str) -> str:
    from pipeline.gate.thresholds import thresholds_path  # noqa: PLC0415

    value = _string("gate_suite", value)
    if not SUITE_NAME.fullmatch(value):
        raise InputError("gate_suite", "must be a suite name (lower-case letters, digits, _), not a path")
    try:
        thresholds_path(value)
    except InputError as exc:
        raise InputError("gate_suite", exc.problem) from None
    return value


def form_params() -> dict[str, Any]:
    """The DAG's `params` (the trigger form), one Airflow `Param` per run parameter."""
    from airflow.sdk import Param  # noqa: PLC0415 - only the DAG needs Airflow; the checks run without it

    return {p.name: Param(p.default, **p.json_schema()) for p in run_params.RUN_PARAMS}


def check_form(params: Mapping[str, Any]) -> dict[str, Any]:
    """The form's values, every one checked and normalised, with defaults for those not given
    (None = not given). Raises InputError naming the first bad field."""
    from dhs_airflow.plan import DEFAULTS, check_output_prefix as check_output_root  # noqa: PLC0415 - plan imports us

    unknown = sorted(str(k) for k in params if k not in DEFAULTS)
    if unknown:
        raise InputError(unknown[0], f"is not a field of the trigger form (undeclared: {', '.join(unknown)})")
    values = {**DEFAULTS, **{k: v for k, v in params.items() if v is not None}}
    out: dict[str, Any] = {}
    for field in ("variant", "experiment_id"):
        out[field] = _string(field, values[field])
        if not SAFE_ID.fullmatch(out[field]):
            raise InputError(field, "only letters, digits, '_', '.', '-' (up to 100, not starting with '-' or '.')")
    for field, allowed in ENUMS.items():
        if values[field] not in allowed:
            raise InputError(field, f"must be one of {', '.join(allowed)}")
        out[field] = values[field]
    out["bands"] = ",".join(parse_bands(_string("bands", values["bands"]), source="bands"))
    for field, (lo, hi) in NUMBERS.items():
        out[field] = _number(field, values[field], lo, hi, integer=False)
    for field, (lo, hi) in INTEGERS.items():
        out[field] = _number(field, values[field], lo, hi, integer=True)
    out["run_config"] = check_run_config(values["run_config"])
    out["local_master"] = check_local_master(values["local_master"])
    out["gate_suite"] = check_gate_suite(values["gate_suite"])
    out["emr_release_label"] = _string("emr_release_label", values["emr_release_label"])
    if not EMR_RELEASE.fullmatch(out["emr_release_label"]):
        raise InputError("emr_release_label", "must be an emr-7.x release (Spark 3.5), e.g. emr-7.6.0")
    for field in ("master_instance_type", "core_instance_type"):
        out[field] = _string(field, values[field])
        if not INSTANCE_TYPE.fullmatch(out[field]):
            raise InputError(field, "must be an EC2 instance type such as m5.2xlarge")
    if out["backend"] == "emr":
        sizing.usable_vcpus(out["core_instance_type"])  # a type the sizing table knows, or refused here
    for field in INPUT_URIS:
        uri = _string(field, values[field])
        out[field] = storage.check_s3_uri(uri, field) if storage.is_s3(uri) else uri
    out["output_prefix"] = check_output_root(_string("output_prefix", values["output_prefix"]))
    for field, env, default in (("code_prefix", CODE_ROOTS_ENV, DEFAULT_CODE_ROOTS),
                                ("emr_log_uri", LOG_ROOTS_ENV, DEFAULT_LOG_ROOTS)):
        uri = _string(field, values[field])
        if not storage.is_s3(uri):
            raise InputError(field, "must be an s3:// URI")
        roots = _roots(env, default)
        if not roots:
            raise InputError(field, f"${env} is empty: no {field} is allowed")
        out[field] = check_output_prefix(uri, source=field, roots=roots, env=env)
    if out["emr_log_uri"] and not out["emr_log_uri"].endswith("/"):
        out["emr_log_uri"] += "/"
    missing = set(DEFAULTS) - set(out)
    assert not missing, f"check_form does not check {sorted(missing)}"  # a new form field needs a rule here
    return out
