"""The gate operator: reads the validation that the Spark step wrote, decides, publishes.

It fails the task with the readable list of failed checks (so the DAG run fails and promotion is
skipped), pushes a summary to XCom for the promote task, and stores the Data Docs and report links.
Before deciding, it checks that the validation belongs to this run and judged exactly the data this
run's compact step recorded (D/runs/<run>/compact.json: immutable URI + content checksum); the
summary carries that URI and checksum to the promotion.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from dhs_airflow.links import DataDocsLink, ReportLink, data_docs_url

#: XCom key of the gate's summary (also the task's return value when the gate passes)
SUMMARY_XCOM_KEY = "gate_summary"


class DhsGateOperator(BaseOperator):
    template_fields: Sequence[str] = ("validation_uri", "suite", "dataset_uri", "pipeline_run")
    operator_extra_links = (DataDocsLink(), ReportLink())
    ui_color = "#fff3d6"

    def __init__(self, *, validation_uri: str, suite: str, dataset_uri: str | None = None,
                 pipeline_run: str | None = None, **kwargs):
        super().__init__(**kwargs)
        self.validation_uri = validation_uri
        self.suite = suite
        self.dataset_uri = dataset_uri
        self.pipeline_run = pipeline_run

    def _check_chain(self, doc: dict) -> None:
        """The validation is this run's and judged what this run's compact step wrote."""
        from pipeline import lineage  # noqa: PLC0415
        from pipeline.errors import InputError  # noqa: PLC0415

        if not self.pipeline_run:
            return
        if doc.get("run") != self.pipeline_run:
            raise AirflowFailException(f"the validation at {self.validation_uri} belongs to run {doc.get('run')!r}, "
                                       f"not to this run {self.pipeline_run!r}; nothing is promoted")
        try:
            receipt = lineage.read_receipt(self.dataset_uri, self.pipeline_run, "compact")
            lineage.check_same_data(found=doc.get("dataset") or {}, expected=receipt,
                                    found_what="the data the validation judged",
                                    expected_what=f"what this run's compact step wrote "
                                                  f"({lineage.receipt_uri(self.dataset_uri, self.pipeline_run, 'compact')})")
        except (InputError, lineage.ChainBroken, KeyError) as exc:
            raise AirflowFailException(f"identity chain broken: {exc}; nothing is promoted") from None

    def execute(self, context):
        from pipeline import storage  # noqa: PLC0415 - keep DAG parsing light
        from pipeline.errors import InputError  # noqa: PLC0415

        validation_json = storage.join(self.validation_uri, "validation.json")
        try:
            doc = json.loads(storage.read_bytes(validation_json))
        except (InputError, ValueError) as exc:
            raise AirflowFailException(f"no usable validation to gate ({exc}); nothing is promoted") from None
        outputs = doc.get("outputs") or {}
        ti = context["ti"]
        if outputs.get("data_docs"):
            ti.xcom_push(key=DataDocsLink().xcom_key, value=data_docs_url(outputs["data_docs"]))
        if outputs.get("report"):
            ti.xcom_push(key=ReportLink().xcom_key, value=data_docs_url(outputs["report"]))
        failures = list(doc.get("failures") or [])
        expectations = doc.get("expectations") or []
        summary = {
            "passed": bool(doc.get("passed")) and not failures,
            "suite": doc.get("variant", self.suite),
            "run": doc.get("run"),
            "data_uri": (doc.get("dataset") or {}).get("data_uri"),
            "drift": doc.get("drift"),
            "validation_json": validation_json,
            "data_docs": outputs.get("data_docs"),
            "report": outputs.get("report"),
            "rows_per_split": (doc.get("dataset") or {}).get("rows_per_split", {}),
            "content_checksum": (doc.get("dataset") or {}).get("content_checksum"),
            "expectations_total": len(expectations),
            "expectations_failed": sum(1 for e in expectations if not e.get("success")),
            "failures": failures,
        }
        self.log.info("gate %s: %d expectations, %d failed; row contract: %s",
                      "PASSED" if summary["passed"] else "FAILED", summary["expectations_total"],
                      summary["expectations_failed"], (doc.get("row_contract") or {}).get("passed"))
        # pushed before deciding, so a failed gate still shows its summary next to its Data Docs link
        ti.xcom_push(key=SUMMARY_XCOM_KEY, value=summary)
        if doc.get("variant") and doc["variant"] != self.suite:
            raise AirflowFailException(f"validation ran suite {doc['variant']!r}, the run asked for {self.suite!r}")
        self._check_chain(doc)
        if not summary["passed"]:
            listing = "\n".join(f"  - {f}" for f in failures) or "  - (validation did not pass)"
            message = (f"quality gate failed: {len(failures)} failed check(s) in suite {summary['suite']!r}; "
                       f"nothing is promoted. Data Docs: {summary['data_docs'] or '(not built)'}\n{listing}")
            self.log.error("%s", message)
            raise AirflowFailException(message)
        return summary
