"""TODO(integration): remove after benchmarks/gate_bench.py imports these names from their homes:
`open_dataset`, `read_rows` from pipeline.dataset; `read_manifest_counts`, `run_config_for`,
`hlr_filter_for`, `manifest_identity_for` from pipeline.gate.inputs."""

from pipeline.dataset import open_dataset, read_rows
from pipeline.gate.inputs import hlr_filter_for, manifest_identity_for, read_manifest_counts, run_config_for

__all__ = ["hlr_filter_for", "manifest_identity_for", "open_dataset", "read_manifest_counts", "read_rows",
           "run_config_for"]
