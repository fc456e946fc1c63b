"""The local backend: run a step definition's spark-submit command line on this machine.

The EMR backend hands the *same* step definition to EMR as a command-runner.jar step
(`emr_steps.steps.to_emr_step`); here it becomes a `spark-submit --master local[N]` process.
"""

from __future__ import annotations

import collections
import os
import subprocess
from collections.abc import Sequence

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowException


class LocalSparkSubmitOperator(BaseOperator):
    """Runs `argv` (a spark-submit command line) and streams its output into the task log.

    Fails with the last lines of the job's output when spark-submit exits non-zero, so the
    reason is visible in the task log without digging through Spark's own logs.
    """

    template_fields: Sequence[str] = ("argv", "env")
    ui_color = "#e8f0ff"

    def __init__(self, *, argv: list[str] | str, env: dict | None = None, tail_lines: int = 40, **kwargs):
        super().__init__(**kwargs)
        self.argv = argv
        self.env = env or {}
        self.tail_lines = tail_lines

    def execute(self, context):
        argv = [str(a) for a in self.argv]
        self.log.info("spark-submit (local backend): %s", " ".join(argv))
        from emr_steps.steps import spark_submit_env  # noqa: PLC0415 - keep DAG parsing light

        # not the worker's whole environment: it holds the metadata DB URL and Airflow's keys
        env = spark_submit_env(extra=self.env)
        tail: collections.deque[str] = collections.deque(maxlen=self.tail_lines)
        with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                              start_new_session=True) as proc:
            try:
                for line in proc.stdout:
                    line = line.rstrip()
                    tail.append(line)
                    self.log.info("%s", line)
                proc.wait()
            except BaseException:
                # A killed task must not leave an orphan Spark JVM writing half an output.
                os.killpg(proc.pid, 9)
                raise
        if proc.returncode != 0:
            raise AirflowException(
                f"spark-submit exited with status {proc.returncode}; last lines:\n" + "\n".join(tail)
            )
        return {"returncode": proc.returncode, "last_line": tail[-1] if tail else ""}
