"""Phase 4 production DAG: inject -> compact -> validate -> gate -> promote, on EMR or locally.

Wiring only: what each step does lives in `pipeline/` and `emr_steps/`; how a step runs on each
backend lives in `emr_steps/steps.py` (one definition, rendered as an EMR step or a local
spark-submit); our operators live in `plugins/dhs_airflow/`.

Trigger it from the UI ("Trigger DAG w/ config"): the Params below render as the form.
"""

from __future__ import annotations

import os

import pendulum
from airflow.providers.amazon.aws.operators.emr import (
    EmrAddStepsOperator,
    EmrCreateJobFlowOperator,
    EmrTerminateJobFlowOperator,
)
from airflow.providers.amazon.aws.sensors.emr import EmrStepSensor
from airflow.sdk import DAG, TriggerRule, task
from airflow.sdk.exceptions import AirflowFailException

from dhs_airflow.gate import DhsGateOperator
from dhs_airflow.local_spark import LocalSparkSubmitOperator
from dhs_airflow.form import form_params
from dhs_airflow.plan import STEPS, start_run
from dhs_airflow.lock import acquire_lock, release_lock
from dhs_airflow.promote import promote_dataset
from pipeline.errors import InputError

with DAG(
    dag_id="dhs_phase4_pipeline",
    description="Lensed COSMOS injections into DR10 LRG cutouts: inject, compact, validate, gate, promote",
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    tags=["dark-halo-scope", "phase4"],
    doc_md=__doc__,
    # the trigger form: one field per run parameter, declared in pipeline/run_params.py
    params=form_params(),
) as dag:

    @task(multiple_outputs=True)
    def plan(params=None, run_id=None):
        """Resolve the form into step definitions for both backends (fails early on bad input and on
        a suite weaker than the run config allows)."""
        try:
            return start_run(dict(params), airflow_run_id=run_id)
        except InputError as exc:  # a bad form value: no retry, nothing started
            raise AirflowFailException(f"refused before anything ran: {exc}") from None

    run_plan = plan()
    # one run per output prefix: a second one is refused here, naming the holder
    lock = acquire_lock(run_plan["dataset_uri"], run_plan["pipeline_run"])

    @task.branch
    def choose_backend(params=None):
        return "create_cluster" if params["backend"] == "emr" else f"local_{STEPS[0]}"

    branch = choose_backend()

    # EMR backend: the Amazon provider's operators, deferrable sensors.
    create_cluster = EmrCreateJobFlowOperator(
        task_id="create_cluster",
        job_flow_overrides=run_plan["job_flow_overrides"],
        aws_conn_id="aws_default",
        region_name=run_plan["region_name"],
    )
    emr_chain = [create_cluster]
    for step in STEPS:
        add = EmrAddStepsOperator(
            task_id=f"emr_{step}",
            job_flow_id=create_cluster.output,
            steps=run_plan[f"emr_{step}"],
            aws_conn_id="aws_default",
            region_name=run_plan["region_name"],
        )
        wait = EmrStepSensor(
            task_id=f"wait_{step}",
            job_flow_id=create_cluster.output,
            step_id=f"{{{{ ti.xcom_pull(task_ids='emr_{step}')[0] }}}}",
            aws_conn_id="aws_default",
            region_name=run_plan["region_name"],
            deferrable=True,
            # 30 s in production; tests (moto) set DHS_EMR_POKE_SECONDS to a second or two
            poke_interval=int(os.environ.get("DHS_EMR_POKE_SECONDS", "30")),
            max_attempts=24 * 120,
            # Airflow 3.3 can mark a resumed sensor FAILED when its trigger fires before the scheduler
            # has processed the deferral (apache/airflow#71580, #72716; seen in
            # tests/test_airflow_production.py): a retry re-reads the step's state, which is idempotent
            retries=2,
            retry_delay=pendulum.duration(seconds=30),
        )
        emr_chain += [add, wait]
    for upstream, downstream in zip(emr_chain, emr_chain[1:]):
        upstream >> downstream

    # Local backend: the same step definitions through spark-submit.
    local_chain = [
        LocalSparkSubmitOperator(task_id=f"local_{step}", argv=run_plan[f"local_{step}"], env=run_plan["local_env"])
        for step in STEPS
    ]
    for upstream, downstream in zip(local_chain, local_chain[1:]):
        upstream >> downstream

    gate = DhsGateOperator(
        task_id="gate",
        validation_uri=run_plan["validation_uri"],
        suite=run_plan["gate_suite"],
        dataset_uri=run_plan["dataset_uri"],
        pipeline_run=run_plan["pipeline_run"],
        trigger_rule=TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
    )

    promote = promote_dataset(run_plan["dataset_uri"], gate.output)

    # The lock's teardown lets the prefix go however the run ends (a teardown does not decide the
    # run's state, so a failed gate still fails the run).
    unlock = release_lock(run_plan["dataset_uri"], run_plan["pipeline_run"]).as_teardown(setups=lock)

    # The teardown closes the EMR scope right after the last Spark step: it runs whatever failed
    # (or succeeded) inside the scope, and the gate, which needs no cluster, runs after it. Keeping
    # gate and promote outside the scope also matters for the local backend: Airflow skips every
    # task in a skipped setup's scope.
    terminate_cluster = EmrTerminateJobFlowOperator(
        task_id="terminate_cluster",
        job_flow_id=create_cluster.output,
        aws_conn_id="aws_default",
        region_name=run_plan["region_name"],
    ).as_teardown(setups=create_cluster)
    emr_chain[-1] >> terminate_cluster

    run_plan >> lock >> branch >> [create_cluster, local_chain[0]]
    [emr_chain[-1], local_chain[-1]] >> gate >> promote
    [promote, terminate_cluster] >> unlock
