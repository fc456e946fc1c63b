"""`dhs stage-code`: build this checkout's wheel and upload what an EMR cluster needs under the
code prefix (the wheel, requirements.lock, bootstrap.sh, the step entry scripts), the layout the
DAG's bootstrap action and steps expect (emr_steps.steps.stage_code)."""

from __future__ import annotations

EPILOG = """\
example:
  dhs stage-code s3://darkhaloscope/code/dhs/0.1.0     # then trigger the DAG with that code_prefix
  dhs stage-code /tmp/code --wheel dist/dark_halo_scope-0.1.0-py3-none-any.whl
"""


def register(subparsers) -> None:
    from dhs_cli.main import HelpFormatter

    p = subparsers.add_parser("stage-code", help="upload the wheel, lock, bootstrap and entry scripts for EMR",
                              description=__doc__, epilog=EPILOG, formatter_class=HelpFormatter)
    p.add_argument("code_prefix", metavar="CODE_PREFIX", help="s3:// prefix (or a local folder) to upload to")
    p.add_argument("--wheel", help="an already built wheel (default: build one with uv into a temporary folder)")
    p.set_defaults(func=run)


def run(args) -> int:
    import tempfile
    from pathlib import Path

    from emr_steps.steps import build_wheel, stage_code, wheel_name
    from pipeline.errors import InputError

    with tempfile.TemporaryDirectory(prefix="dhs_wheel_") as tmp:
        if args.wheel:
            wheel = Path(args.wheel)
            if not wheel.is_file() or not wheel.name.endswith(".whl"):
                raise InputError("--wheel", f"{wheel} is not a wheel file")
        else:
            wheel = build_wheel(tmp)
        if wheel.name != wheel_name():
            raise InputError("--wheel", f"{wheel.name} is not this checkout's version ({wheel_name()}): the "
                                        "cluster's bootstrap action names that file")
        for uri in stage_code(args.code_prefix, wheel):
            print(uri)
    return 0
