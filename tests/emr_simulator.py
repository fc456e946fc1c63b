"""A stand-in for the EMR cluster behind moto, for the DAG's EMR-backend tests.

moto accepts `run_job_flow` / `add_job_flow_steps` / `terminate_job_flows` but never runs a step:
its steps stay PENDING/RUNNING forever. The simulator is a thread in the test process (where
ThreadedMotoServer keeps moto's backend) that watches moto's clusters and, for every step the DAG
submitted, does what the real Spark step would leave on S3, then marks the step COMPLETED (or
FAILED when the test asks for a failure):

- inject (`emr_steps/inject.py --output-prefix D ... --pipeline-run R`): uploads a small factory dataset
  (tests/gate_factories.py: clean, or with one named defect) to D/phase4c/ and writes the run's
  inject receipt (pipeline.lineage) over those S3 objects, as the real step does;
- compact (`emr_steps/compact.py --output-prefix D --pipeline-run R --switch-current 0`): checks the
  receipt against D/phase4c, copies it to the content-addressed D/compacted/<id>/ and writes the
  compact receipt (without --pipeline-run: a time-stamped copy and D/CURRENT, as by hand);
- validate (`emr_steps/validate.py --output-prefix D --gate-suite V --out O --pipeline-run R`): runs the
  real `pipeline.gate.validate.validate_dataset` (local Spark) on the LOCAL copy of the same rows
  with suite V (local Spark has no S3 connector), then records the dataset as the real step would
  see it on S3: the compact receipt's data URI and the content checksum computed by
  `pipeline.dataset` over the S3 objects (ETags), so the gate and the promotion re-check
  exactly those objects; uploads O/validation.json and COMPLETES whether the suite passed or not
  (as emr_steps/validate.py exits 0 once it has written validation.json: the gate task decides).

`fail_kinds` marks the named steps FAILED without running them (a crashed Spark job).

`prepare(variant)` runs the local validation ahead (e.g. in a thread while the DAG's first tasks
run); the validate step then reuses it instead of running Spark while the DAG waits.

`hold` (optional) keeps each step RUNNING on moto, its outputs already written, until
`hold(step)` returns true (or `hold_timeout` passes, recorded in `errors`): the production-shaped
test (tests/test_airflow_production.py) holds every step until its deferrable sensor has DEFERRED
to the triggerer, so only the triggerer can see the step end.

Everything the DAG does (create the cluster, submit, wait with deferrable sensors, terminate, gate,
promote) goes through moto's HTTP API; only "running the step" is simulated.
"""

from __future__ import annotations

import json
import shlex
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

def _arg(args: list[str], flag: str) -> str | None:
    for i, a in enumerate(args[:-1]):
        if a == flag:
            return args[i + 1]
    return None


def step_kind(args: list[str]) -> str | None:
    for a in args:
        for kind in ("inject", "compact", "validate"):
            if a.endswith(f"emr_steps/{kind}.py"):
                return kind
    return None


def all_clusters() -> dict:
    """Every cluster moto holds, whatever account/region its server filed it under (behind a
    custom endpoint, moto's server does not always see the client's region)."""
    from moto.emr.models import emr_backends

    out = {}
    for account in list(emr_backends.keys()):
        for region in list(emr_backends[account].keys()):
            out.update(emr_backends[account][region].clusters)
    return out


@dataclass
class SubmittedStep:
    cluster_id: str
    step_id: str
    name: str
    jar: str
    args: list[str]
    kind: str | None
    final_state: str = ""
    error: str = ""
    held_seconds: float = 0.0

    def cmdline(self) -> str:
        return shlex.join(self.args)


@dataclass
class EmrSimulator:
    endpoint_url: str
    region: str
    spark: object
    #: which factory dataset the "inject" step produces: None (clean) or a gate_factories defect name
    defect: str | None = None
    #: step kinds to mark FAILED (without writing their outputs)
    fail_kinds: set = field(default_factory=set)
    poll_seconds: float = 0.2
    #: keep each step RUNNING (outputs written) until hold(step) is true; None: finish at once
    hold: Callable[["SubmittedStep"], bool] | None = None
    hold_timeout: float = 180.0
    steps: list[SubmittedStep] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self):
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="emr-simulator", daemon=True)
        self._seen: set[str] = set()
        self._work = Path(tempfile.mkdtemp(prefix="dhs_emr_sim_"))
        self._local_case: tuple[Path, Path] | None = None
        self._validated: dict[str, dict] = {}
        self._lock = threading.RLock()  # local_case / the local validation: the loop and prepare()

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> "EmrSimulator":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # ------------------------------------------------------------------ moto

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                for cluster_id, cluster in all_clusters().items():
                    for step in list(cluster.steps):
                        if step.id in self._seen or step.state not in ("PENDING", "RUNNING"):
                            continue
                        self._seen.add(step.id)
                        self._run(cluster_id, step)
            except Exception:  # noqa: BLE001 - keep watching; the test reports it
                self.errors.append(traceback.format_exc())
            self._stop.wait(self.poll_seconds)

    def _run(self, cluster_id: str, step) -> None:
        from moto.core.utils import utcnow

        args = [str(a) for a in step.args]
        rec = SubmittedStep(cluster_id, step.id, step.name, step.jar, args, step_kind(args))
        self.steps.append(rec)
        step.state = "RUNNING"
        step.start_date_time = utcnow()
        state = "COMPLETED"
        if rec.kind in self.fail_kinds:
            state = "FAILED"
            rec.error = "failure requested by the test"
        else:
            try:
                getattr(self, f"_do_{rec.kind}")(args)
            except Exception:  # noqa: BLE001 - a crashing step is a FAILED step, as on EMR
                state = "FAILED"
                rec.error = traceback.format_exc()
                self.errors.append(rec.error)
        if self.hold is not None:
            self._wait_for_release(rec)
        step.end_date_time = utcnow()
        rec.final_state = state
        step.state = state

    def _wait_for_release(self, rec: "SubmittedStep") -> None:
        t0 = time.time()
        while not self._stop.is_set():
            try:
                if self.hold(rec):
                    break
            except Exception:  # noqa: BLE001 - a failing check holds on; the timeout reports it
                rec.error = traceback.format_exc()
            if time.time() - t0 > self.hold_timeout:
                self.errors.append(f"step {rec.kind} ({rec.step_id}) not released in {self.hold_timeout:.0f} s"
                                   + (f": {rec.error}" if rec.error else ""))
                break
            self._stop.wait(self.poll_seconds)
        rec.held_seconds = time.time() - t0

    # ------------------------------------------------------------------ S3 helpers

    def s3(self):
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint_url, region_name=self.region,
                            aws_access_key_id="testing", aws_secret_access_key="testing")

    def _upload_tree(self, local: Path, uri: str) -> None:
        from pipeline import storage

        bucket, key = storage.split_s3(uri)
        client = self.s3()
        for path in sorted(p for p in local.rglob("*") if p.is_file()):
            client.upload_file(str(path), bucket, f"{key.rstrip('/')}/{path.relative_to(local).as_posix()}")

    def local_case(self) -> tuple[Path, Path]:
        """(dataset D, manifest M) written locally by tests/gate_factories.py, once."""
        with self._lock:
            if self._local_case is None:
                from tests.gate_factories import make_case

                self._local_case = make_case(self._work, self.defect)
            return self._local_case

    def prepare(self, variant: str) -> None:
        """Validate the local rows with suite `variant` now; the validate step reuses the result."""
        self._local_validation(variant)

    def _local_validation(self, variant: str) -> dict:
        from pipeline.gate.validate import validate_dataset

        with self._lock:
            if variant not in self._validated:
                local_dataset, local_manifest = self.local_case()
                local_out = self._work / f"validation_{variant}"
                validate_dataset(str(local_dataset), manifest_uri=str(local_manifest), variant=variant,
                                 out_dir=str(local_out), spark=self.spark, build_docs=False, build_report=False)
                self._validated[variant] = json.loads((local_out / "validation.json").read_text())
            return json.loads(json.dumps(self._validated[variant]))

    # ------------------------------------------------------------------ the steps

    def _do_None(self, args):  # noqa: N802 - an unknown step: EMR would run it; we refuse to guess
        raise RuntimeError(f"the simulator does not know this step: {args}")

    def _do_inject(self, args: list[str]) -> None:
        from pipeline import lineage

        output = _arg(args, "--output-prefix").rstrip("/")
        dataset, _ = self.local_case()
        self._upload_tree(dataset / "phase4c", f"{output}/phase4c")
        run = _arg(args, "--pipeline-run")
        if run:
            lineage.write_receipt(output, run, "inject", lineage.data_fingerprint(f"{output}/phase4c"))

    def _do_compact(self, args: list[str]) -> None:
        from emr_steps.compact import compaction_id
        from pipeline import lineage, storage

        output = _arg(args, "--output-prefix").rstrip("/")
        run = _arg(args, "--pipeline-run")
        bucket, key = storage.split_s3(output)
        client = self.s3()
        src = f"{key}/phase4c/"
        listing = client.list_objects_v2(Bucket=bucket, Prefix=src).get("Contents", [])
        if not listing:
            raise RuntimeError(f"nothing to compact under {output}/phase4c")
        source = lineage.data_fingerprint(f"{output}/phase4c")
        if run:
            lineage.check_same_data(found=source, expected=lineage.read_receipt(output, run, "inject"),
                                    found_what="phase4c", expected_what="the inject receipt")
        stamp = compaction_id(source["content_checksum"], 256, "zstd") if run else time.strftime("%Y%m%dT%H%M%S")
        for obj in listing:
            client.copy_object(Bucket=bucket, Key=f"{key}/compacted/{stamp}/{obj['Key'][len(src):]}",
                               CopySource={"Bucket": bucket, "Key": obj["Key"]})
        if run:
            lineage.write_receipt(output, run, "compact", {
                **lineage.data_fingerprint(f"{output}/compacted/{stamp}"), "source_checksum": source["content_checksum"]})
        if _arg(args, "--switch-current") != "0":
            client.put_object(Bucket=bucket, Key=f"{key}/CURRENT", Body=json.dumps({"data": f"compacted/{stamp}"}).encode())

    def _do_validate(self, args: list[str]) -> None:
        from pipeline import storage
        from pipeline.dataset import files_checksum, open_dataset

        dataset_uri, variant, out = _arg(args, "--output-prefix"), _arg(args, "--gate-suite"), _arg(args, "--out")
        doc = self._local_validation(variant)
        run = _arg(args, "--pipeline-run")
        if run:  # what the real step opens: exactly the run's compaction
            from pipeline import lineage

            on_s3 = open_dataset(lineage.read_receipt(dataset_uri.rstrip("/"), run, "compact")["data_uri"])
        else:
            on_s3 = open_dataset(dataset_uri)
        doc["run"] = run
        doc["dataset"].update({"uri": dataset_uri.rstrip("/"), "data_uri": on_s3.data_uri,
                               "content_checksum": files_checksum(on_s3.files), "files": len(on_s3.files)})
        doc["simulated_by"] = "tests/emr_simulator.py (rows validated locally; checksum over the S3 objects)"
        storage.write_bytes(storage.join(out, "validation.json"), json.dumps(doc, indent=1, default=str).encode())
        # emr_steps/validate.py exits 0 once validation.json is written, passed or not: the step
        # COMPLETES and the DAG's gate task decides (and fails the run with the failure list)
