"""Our Airflow operators, links and UI additions. Imported by `dags/` and by `plugins/dhs_plugin.py`."""
