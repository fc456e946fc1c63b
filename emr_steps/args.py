"""The seed's step flags (phase4c_production_review.md section 3.3), shared by every entry point.

The seed's production step ran with:
    --stage 4c --output-s3 ... --variant v5_cosmos_production --experiment-id ...
    --parent-s3 <manifest> --coadd-s3-cache-prefix ... --psf-model moffat --moffat-beta 3.5
    --source-mode cosmos --cosmos-bank-h5 ... --control-frac-train 0.50 --unpaired-controls 1
    --skip-if-exists 1 --force 1 --bands g,r,z
Those spellings are accepted as they are (the `-s3` names are aliases: local paths, `s3://` and
`s3a://` all work). Booleans take 0/1 like the seed, or no value (= 1).

Rerun flags:
  --skip-if-exists 1   a COMPLETE output of this very run (same manifest checksum, one row per
                       task, same run config) is left alone and the step exits 0;
  --force 1            anything else at the output is replaced. Alone, --force rewrites even a
                       complete output. With both (the seed's pair) a complete output is kept
                       and anything else is rewritten.
  neither              a complete output is an error (nothing is overwritten silently); an
                       incomplete one (an interrupted run: no _dhs_dataset.json) is replaced.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from dataclasses import dataclass
from typing import Any, Sequence

from pipeline import run_params, storage
from pipeline.config import RunConfig, load_run_config, parse_bands
from pipeline.errors import InputError

STAGES = ("4c", "4p5")
DEFAULT_TARGET_FILE_MB = 256


def _bool01(text: str) -> bool:
    t = str(text).strip().lower()
    if t in ("1", "true", "yes", "y", "on"):
        return True
    if t in ("0", "false", "no", "n", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected 0 or 1, got {text!r}")


def _bands(text: str) -> tuple[str, ...]:
    try:
        return parse_bands(text)
    except InputError as exc:
        raise argparse.ArgumentTypeError(exc.problem) from None


def build_parser(prog: str = "emr_steps", stage: str | None = None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=prog, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                allow_abbrev=False)  # a prefix of a flag is not that flag: every spelling is declared
    p.add_argument("--stage", choices=STAGES, default=stage, required=stage is None, help="4c inject, 4p5 compact")
    _run_param(p, "output_prefix", required=True, help="dataset root D (local, s3://, s3a://)")
    _run_param(p, "manifest_uri", help="4c: the manifest directory M (M/manifest.parquet + M/manifest.json)")
    p.add_argument("--source", dest="source",
                   help="4p5: the 4c data or a dataset root to compact (default: --output-prefix's current data)")
    _run_param(p, "coadd_cache_prefix", help="DR10 coadd cache: <prefix>/<brick>/legacysurvey-*.fits.fz")
    _run_param(p, "cosmos_bank_h5", help="COSMOS bank HDF5 (local or S3; S3 is copied to local disk once per executor)")
    _run_param(p, "run_config", help="RunConfig YAML path or built-in name (demo, production); the flags below override it")
    _run_param(p, "variant")
    _run_param(p, "experiment_id")
    _run_param(p, "psf_model")
    _run_param(p, "moffat_beta", type=float)
    _run_param(p, "source_mode")
    _run_param(p, "control_frac_train", type=float)
    p.add_argument("--unpaired-controls", dest="unpaired_controls", type=_bool01, nargs="?", const=True)
    _run_param(p, "bands", type=_bands, help="comma-separated, e.g. g,r,z ('grz' is refused)")
    p.add_argument("--skip-if-exists", dest="skip_if_exists", type=_bool01, nargs="?", const=True, default=False)
    p.add_argument("--force", type=_bool01, nargs="?", const=True, default=False)
    p.add_argument("--run-id", dest="run_id", help="default: derived from the inputs (4c) so a rerun gives identical rows; UTC time (4p5)")
    _run_param(p, "target_file_mb", type=float, default=DEFAULT_TARGET_FILE_MB, help="4p5: target Parquet file size")
    p.add_argument("--num-partitions", dest="num_partitions", type=int, help="4c: Spark partitions of the task table (default spark.sql.shuffle.partitions)")
    p.add_argument("--compression", default="zstd", help="Parquet codec of the written files")
    p.add_argument("--planned-core-hours", dest="planned_core_hours", type=float,
                   help="4c: core-hours the plan sized this step for (pipeline.sizing); recorded beside the measured ones")
    p.add_argument("--master", help="Spark master when not run by spark-submit (default: $DHS_SPARK_MASTER or local[2])")
    p.add_argument("--pipeline-run", dest="pipeline_run",
                   help="name of the pipeline run this step belongs to: the step leaves a receipt in "
                        "D/runs/<run>/ and 4p5 compacts exactly the data its run's 4c receipt names (pipeline.lineage)")
    p.add_argument("--switch-current", dest="switch_current", type=_bool01, nargs="?", const=True, default=None,
                   help="4p5: point D/CURRENT at the new compaction (default 1; 0 with --pipeline-run, where the "
                        "promotion moves CURRENT once the gate has passed)")
    return p


def _run_param(p: argparse.ArgumentParser, name: str, **kwargs) -> None:
    """A flag of a run parameter (pipeline.run_params): its one step flag, plus the seed's spellings."""
    rp = run_params.param(name)
    p.add_argument(rp.step_flag, *rp.seed_flags, dest=name, **kwargs)


def parse_args(argv: Sequence[str] | None = None, stage: str | None = None, prog: str = "emr_steps") -> argparse.Namespace:
    args = build_parser(prog, stage).parse_args(argv)
    if args.stage == "4c" and args.source:
        raise InputError("--source", "names the data to compact (4p5); stage 4c reads the manifest named by --manifest-uri")
    if args.stage == "4p5" and args.manifest_uri:
        raise InputError("--manifest-uri", "stage 4p5 compacts data, not a manifest: name the data with --source")
    return args


def run_config_from_args(args: argparse.Namespace, base: RunConfig | dict | None = None) -> RunConfig:
    """RunConfig = --run-config (or `base`, e.g. the manifest's, or the defaults) + flag overrides.
    Invalid values raise InputError naming the flag's config key."""
    if args.run_config:
        cfg = load_run_config(args.run_config)
    elif isinstance(base, RunConfig):
        cfg = base
    elif base:
        try:
            cfg = RunConfig(**dict(base))
        except TypeError as exc:
            raise InputError("manifest run config", str(exc)) from None
    else:
        cfg = RunConfig()
    changes: dict[str, Any] = {}
    for key in ("variant", "experiment_id", "psf_model", "moffat_beta", "source_mode", "unpaired_controls"):
        value = getattr(args, key, None)
        if value is not None:
            changes[key] = value
    if getattr(args, "bands", None):
        changes["bands"] = tuple(args.bands)
    if getattr(args, "control_frac_train", None) is not None:
        changes["control_frac"] = {**cfg.control_frac, "train": float(args.control_frac_train)}
    return cfg.replace(**changes) if changes else cfg


def derived_run_id(stage: str, *parts: Any) -> str:
    """A run id that is a function of the inputs: a rerun of the same inputs writes the same
    `run_id` column, so its rows are byte-for-byte those of the first run."""
    h = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:12]
    return f"{stage}-{h}"


@dataclass(frozen=True)
class Paths:
    """The URIs a step touches, each in the spelling its consumer needs."""

    root: str  # dataset root as given (s3:// normalised)
    data: str  # D/phase4c

    @property
    def data_spark(self) -> str:
        return storage.to_spark(self.data)


def dataset_paths(output: str) -> Paths:
    root = storage.to_s3(output).rstrip("/") if storage.is_s3(output) else str(output)
    return Paths(root=root, data=storage.join(root, "phase4c"))


def decide_rerun(complete: bool, reason: str, *, skip_if_exists: bool, force: bool, where: str) -> str:
    """'skip' | 'write'; raises InputError when a complete output would be overwritten silently."""
    if complete and skip_if_exists:
        return "skip"
    if complete and not force:
        raise InputError(where, "a complete output of this run already exists; pass --skip-if-exists 1 to keep it or --force 1 to rewrite it")
    return "write"
