"""The gate: row contract (pandera), profile (Spark aggregates), suites (GX), report, promotion.

Spark, pandera and Great Expectations are imported inside the functions that need them, so
`import pipeline.gate` stays cheap (GX alone takes ~18 s to import).

Public entry points: `pipeline.gate.validate.validate_dataset` and
`pipeline.gate.promote.promote_dataset`.
"""
