"""EMR cluster size from the work: core count from the task count, the measured cost per stamp and
a target wall time (issue 19).

The seed ran 11.75M stamps on 34 x m5.2xlarge because its stamps cost ~0.2 core-s each; ours cost
~50x less (docs/cost_model.md), so keeping the seed's cluster pays for ~17x idle cores. The plan
task proposes the cluster with `plan_cluster`; an explicit node count in the form overrides it
(and the plan still records what the work needed).

Model (every figure from `pipeline/data/cost_model.json`, which names the command, machine and
date each came from): the three Spark steps run one after the other on the same cluster, so

    work_core_h  = stamps x sum(step marginal core-s per stamp) / 3600
    fixed_h      = sum(step fixed wall s) / 3600              (JVM start, imports, bank: per job)
    nodes        = ceil(work_core_h / (usable vCPUs per node x (target_h - fixed_h)))

with `usable vCPUs = vCPUs - 1` (YARN's NodeManager and the OS keep about one), at least
MIN_CORE_NODES. Pure: no I/O but reading the packaged cost model.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from pipeline.errors import InputError

COST_MODEL_PATH = Path(__file__).parent / "data" / "cost_model.json"

#: vCPUs of the EC2 types an EMR core group is likely to use (AWS EC2 instance-type pages).
INSTANCE_VCPUS = {
    "m5.xlarge": 4, "m5.2xlarge": 8, "m5.4xlarge": 16, "m5.8xlarge": 32, "m5.12xlarge": 48,
    "m5.16xlarge": 64, "m5.24xlarge": 96,
    "m6i.xlarge": 4, "m6i.2xlarge": 8, "m6i.4xlarge": 16, "m6i.8xlarge": 32,
    "c5.2xlarge": 8, "c5.4xlarge": 16, "c5.9xlarge": 36,
    "r5.2xlarge": 8, "r5.4xlarge": 16,
}
#: kept by YARN's NodeManager and the OS on each node (docs/cost_model.md, "7 vCPU used")
RESERVED_VCPUS_PER_NODE = 1
#: two core nodes at least: Spark reschedules a lost node's tasks on the other (tests/
#: test_spark_cluster.py kills a worker mid-step); with one node a lost node ends the run.
MIN_CORE_NODES = 2
#: the trigger form's upper limit (plugins/dhs_airflow/form.py)
MAX_CORE_NODES = 200
STEPS = ("inject", "compact", "validate")


@dataclass(frozen=True)
class StepCost:
    marginal_core_s_per_stamp: float
    fixed_wall_s: float
    source: str


@dataclass(frozen=True)
class CostModel:
    steps: dict[str, StepCost]
    machine: str

    @property
    def core_s_per_stamp(self) -> float:
        return sum(s.marginal_core_s_per_stamp for s in self.steps.values())

    @property
    def fixed_wall_s(self) -> float:
        return sum(s.fixed_wall_s for s in self.steps.values())


@lru_cache(maxsize=4)
def load_cost_model(path: str | Path = COST_MODEL_PATH) -> CostModel:
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
        steps = {name: StepCost(float(doc["steps"][name]["marginal_core_s_per_stamp"]),
                                float(doc["steps"][name]["fixed_wall_s"]), str(doc["steps"][name]["source"]))
                 for name in STEPS}
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(str(path), f"not a readable cost model ({type(exc).__name__}: {exc})") from None
    for name, cost in steps.items():
        if not (cost.marginal_core_s_per_stamp > 0 and cost.fixed_wall_s >= 0):
            raise InputError(str(path), f"step {name!r}: costs must be positive")
    return CostModel(steps=steps, machine=str(doc.get("machine", "")))


@dataclass(frozen=True)
class ClusterPlan:
    """What the plan proposes (or what an override gives) and what the work needs."""

    stamps: int
    core_instance_type: str
    core_instance_count: int
    #: the count the work needs at the target; equals core_instance_count unless overridden
    sized_instance_count: int
    overridden: bool
    usable_vcpus_per_node: int
    target_wall_hours: float
    #: stamps x marginal cost: the work itself, whatever the cluster
    work_core_hours: float
    #: cores held for the predicted wall time: what the cluster costs (nodes x usable vCPUs x h)
    planned_core_hours: float
    predicted_wall_hours: float
    #: the inject step alone on this cluster (cores held for its predicted wall time): what the
    #: inject step's record sets beside its measured core-hours
    planned_inject_core_hours: float

    def as_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def usable_vcpus(instance_type: str) -> int:
    try:
        return INSTANCE_VCPUS[instance_type] - RESERVED_VCPUS_PER_NODE
    except KeyError:
        raise InputError("core_instance_type", f"{instance_type!r} is not in the sizing table "
                                               f"({', '.join(sorted(INSTANCE_VCPUS))}); add it to "
                                               "pipeline.sizing.INSTANCE_VCPUS with its vCPU count") from None


def predicted_wall_hours(stamps: int, nodes: int, vcpus_per_node: int, model: CostModel) -> float:
    return stamps * model.core_s_per_stamp / 3600 / (nodes * vcpus_per_node) + model.fixed_wall_s / 3600


def plan_cluster(stamps: int, *, target_wall_hours: float = 2.0, core_instance_type: str = "m5.2xlarge",
                 core_instance_count: int | None = None, model: CostModel | None = None) -> ClusterPlan:
    """The core-node count for `stamps` tasks to finish within `target_wall_hours`, or the given
    `core_instance_count` (an override, e.g. the seed's 34) with what the work would have needed."""
    model = model or load_cost_model()
    if int(stamps) != stamps or stamps < 0:
        raise InputError("manifest", f"task count must be a non-negative integer, got {stamps!r}")
    if not (math.isfinite(target_wall_hours) and target_wall_hours > 0):
        raise InputError("target_wall_hours", f"must be a positive number of hours, got {target_wall_hours!r}")
    stamps = int(stamps)
    vcpus = usable_vcpus(core_instance_type)
    work_core_h = stamps * model.core_s_per_stamp / 3600
    fixed_h = model.fixed_wall_s / 3600
    if target_wall_hours <= fixed_h:
        raise InputError("target_wall_hours", f"{target_wall_hours} h is shorter than the steps' fixed cost "
                                              f"({fixed_h:.3f} h, docs/cost_model.md)")
    needed = max(MIN_CORE_NODES, math.ceil(work_core_h / (vcpus * (target_wall_hours - fixed_h))))
    if core_instance_count is None and needed > MAX_CORE_NODES:
        raise InputError("target_wall_hours", f"{stamps} stamps in {target_wall_hours} h need {needed} "
                                              f"{core_instance_type} nodes, more than {MAX_CORE_NODES}: allow more "
                                              "time or a larger instance type")
    nodes = needed if core_instance_count is None else int(core_instance_count)
    wall_h = predicted_wall_hours(stamps, nodes, vcpus, model)
    return ClusterPlan(
        stamps=stamps, core_instance_type=core_instance_type, core_instance_count=nodes,
        sized_instance_count=needed, overridden=core_instance_count is not None,
        usable_vcpus_per_node=vcpus, target_wall_hours=float(target_wall_hours),
        work_core_hours=work_core_h, planned_core_hours=nodes * vcpus * wall_h, predicted_wall_hours=wall_h,
        planned_inject_core_hours=planned_step_core_hours("inject", stamps, nodes * vcpus, model),
    )


def planned_step_core_hours(step: str, stamps: int, cores: int, model: CostModel | None = None) -> float:
    """Core-hours one step holds on `cores` cores: its work plus its fixed wall time on every core
    (the cores wait through JVM start and imports too), = cores x predicted wall / 3600."""
    cost = (model or load_cost_model()).steps[step]
    return (stamps * cost.marginal_core_s_per_stamp + cores * cost.fixed_wall_s) / 3600


def sizing_table(stamp_counts=(1_000_000, 11_750_000, 50_000_000), *, target_wall_hours: float = 2.0,
                 core_instance_type: str = "m5.2xlarge") -> list[ClusterPlan]:
    """The docs' table (docs/cost_model.md, docs/production.md): one plan per stamp count."""
    return [plan_cluster(n, target_wall_hours=target_wall_hours, core_instance_type=core_instance_type)
            for n in stamp_counts]
