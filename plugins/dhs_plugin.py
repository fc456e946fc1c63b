"""Registers Dark Halo Scope's additions with Airflow: the Data Docs links of the gate task and
the /dhs-docs app that serves local Data Docs and reports."""

from airflow.plugins_manager import AirflowPlugin

from dhs_airflow.docs_app import create_app
from dhs_airflow.links import DataDocsLink, ReportLink


class DarkHaloScopePlugin(AirflowPlugin):
    name = "dark_halo_scope"
    operator_extra_links = [DataDocsLink(), ReportLink()]
    fastapi_apps = [{"app": create_app(), "url_prefix": "/dhs-docs", "name": "Dark Halo Scope Data Docs"}]
