"""The gate: row contract (pandera), profile (Spark aggregates), suites (GX), report, promotion.

One job per module (docs/architecture.md, "The gate package"). The modules that only run Spark
jobs (spark_physics, histograms, identity, profile, row_contract) import pyspark at module level;
everything Airflow's plugins and DAGs import (promote, verify, thresholds, and validate's module
level) imports no Spark, numpy, pyarrow, GX or pandera, so `import pipeline.gate.promote` stays
cheap (GX alone takes ~18 s to import); tests/test_gate_imports.py holds both rules.

Public entry points: `pipeline.gate.validate.validate_dataset` and
`pipeline.gate.promote.promote_dataset`.
"""
