"""`dhs size`: the EMR core group a run needs (pipeline.sizing), the same figure the DAG's plan
task uses when the form's core_instance_count is 0."""

from __future__ import annotations

EPILOG = """\
examples:
  dhs size --tasks 11750000 --hours 2                 # the seed's run in two hours
  dhs size --manifest s3://bucket/phase4a/v5 --hours 1 --instance-type m5.4xlarge
  dhs size --tasks 11750000 --nodes 34                # what the seed's 34 nodes would cost and take
"""


def register(subparsers) -> None:
    from dhs_cli.main import HelpFormatter

    p = subparsers.add_parser("size", help="EMR cluster size from the task count and a target wall time",
                              description=__doc__, epilog=EPILOG, formatter_class=HelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--tasks", type=int, help="number of stamps (manifest tasks)")
    what.add_argument("--manifest", help="Phase 4a manifest directory (reads n_tasks from its manifest.json)")
    p.add_argument("--hours", type=float, default=2.0, help="target wall time of inject + compact + validate")
    p.add_argument("--instance-type", default="m5.2xlarge", help="EMR core instance type")
    p.add_argument("--nodes", type=int, help="an explicit node count (prints what it would take and cost)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from pipeline import sizing

    if args.manifest:
        from pipeline.manifest import task_count  # noqa: PLC0415 - the same reader as the DAG's plan

        tasks = task_count(args.manifest, source="--manifest")
    else:
        tasks = args.tasks
    from pipeline.errors import InputError

    flags = {"manifest": "--tasks", "target_wall_hours": "--hours", "core_instance_type": "--instance-type"}
    if args.nodes is not None and not 1 <= args.nodes <= sizing.MAX_CORE_NODES:
        raise InputError("--nodes", f"must be between 1 and {sizing.MAX_CORE_NODES}, got {args.nodes}")
    try:
        plan = sizing.plan_cluster(tasks, target_wall_hours=args.hours, core_instance_type=args.instance_type,
                                   core_instance_count=args.nodes)
    except InputError as exc:  # the library names the form's fields; here the user typed flags
        raise InputError(flags.get(exc.source, exc.source), exc.problem) from None
    model = sizing.load_cost_model()
    print(f"{plan.stamps} stamps, {model.core_s_per_stamp * 1e3:.2f} core-ms each "
          f"({', '.join(f'{k} {v.marginal_core_s_per_stamp * 1e3:.2f}' for k, v in model.steps.items())}; "
          f"measured on {model.machine})")
    print(f"-> {plan.core_instance_count} x {plan.core_instance_type} ({plan.usable_vcpus_per_node} vCPUs used each)"
          + (f", overriding the {plan.sized_instance_count} the work needs in {plan.target_wall_hours} h"
             if plan.overridden else f" for {plan.target_wall_hours} h"))
    print(f"   work {plan.work_core_hours:.1f} core-h; predicted wall {plan.predicted_wall_hours:.2f} h; "
          f"cluster holds {plan.planned_core_hours:.1f} core-h")
    print(json.dumps(plan.as_dict(), sort_keys=True))
    return 0
