"""emr_steps/validate.py, the DAG's validation step: its exit code tells the step's backend
(EMR or the local spark-submit) whether validation.json was written, not whether the gate passed.
Exit 0 with a failing verdict is checked where it matters, in the DAG: the strict run of
tests/test_dag_local.py (local_validate succeeds, the gate task fails with the list). Here: exit 2,
nothing written, for an input the step cannot use."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.spark


def test_validate_step_exits_2_for_unusable_input_naming_it(spark, tmp_path, capsys):
    from emr_steps.validate import main
    from tests.gate_factories import make_case

    dataset, _ = make_case(tmp_path / "case", None)
    missing = tmp_path / "no_manifest"
    out = tmp_path / "validation" / "run1"
    assert main(["--output-prefix", str(dataset), "--manifest-uri", str(missing), "--gate-suite", "demo", "--out", str(out)]) == 2
    assert str(missing) in capsys.readouterr().err
    assert not (out / "validation.json").exists()
