"""Dark Halo Scope data platform: the pure core.

Physics and I/O live here as plain functions over numpy arrays; Spark (`emr_steps/`) and
Airflow (`dags/`, `plugins/`) only call into this package.
"""

__version__ = "0.1.0"
