"""Spark entry points (`inject` 4c, `compact` 4p5, `validate`), the step definitions shared by
the EMR and local backends (`steps`), and the EMR bootstrap script (`bootstrap.sh`)."""
