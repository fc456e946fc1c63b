"""`dhs size`: the EMR core group a run needs (pipeline.sizing), the same figure the DAG's plan
task uses when the form's core_instance_count is 0."""

from __future__ import annotations

from pipeline import run_params

EPILOG = """\
examples:
  dhs size --tasks 11750000 --hours 2                 # the seed's run in two hours
  dhs size --manifest s3://bucket/phase4a/v5 --hours 1 --instance-type m5.4xlarge
  dhs size --tasks 11750000 --nodes 34                # what the seed's 34 nodes would cost and take
"""


def register(subparsers) -> None:
    from dhs_cli.main import HelpFormatter, add_run_param

    p = subparsers.add_parser("size", help="EMR cluster size from the task count and a target wall time",
                              description=__doc__, epilog=EPILOG, formatter_class=HelpFormatter)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--tasks", type=int, help="number of stamps (manifest tasks)")
    add_run_param(what, "manifest_uri", help="Phase 4a manifest directory (reads n_tasks from its manifest.json)")
    add_run_param(p, "target_wall_hours", type=float, default=run_params.param("target_wall_hours").default,
                  help="target wall time of inject + compact + validate")
    add_run_param(p, "core_instance_type", default=run_params.param("core_instance_type").default)
    add_run_param(p, "core_instance_count", type=int,
                  help="an explicit node count (prints what it would take and cost)")
    p.set_defaults(func=run)


def run(args) -> int:
    import json

    from pipeline import sizing

    if args.manifest_uri:
        from pipeline.manifest import task_count  # noqa: PLC0415 - the same reader as the DAG's plan

        tasks = task_count(args.manifest_uri, source="--manifest-uri")
    else:
        tasks = args.tasks
    from pipeline.errors import InputError

    nodes = args.core_instance_count
    if nodes is not None and not 1 <= nodes <= sizing.MAX_CORE_NODES:
        raise InputError("--core-instance-count", f"must be between 1 and {sizing.MAX_CORE_NODES}, got {nodes}")
    try:
        plan = sizing.plan_cluster(tasks, target_wall_hours=args.target_wall_hours,
                                   core_instance_type=args.core_instance_type, core_instance_count=nodes)
    except InputError as exc:  # the library names the run parameter; here the user typed its flag
        flag = "--tasks" if exc.source == "manifest" else \
            run_params.param(exc.source).cli_flag if exc.source in run_params.BY_NAME else exc.source
        raise InputError(flag, exc.problem) from None
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
