"""`dhs`: the Dark Halo Scope command line.

Each subcommand lives in its own module exposing `register(subparsers)`; the module sets
`func` on its parser. Bad input (`InputError`) is printed as one clear line and exits 2.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from pipeline.errors import InputError

#: Subcommand modules, in the order `dhs --help` lists them (the data flow).
COMMAND_MODULES = (
    "dhs_cli.demo_cmd",
    "dhs_cli.survey_cmd",
    "dhs_cli.bank_cmd",
    "dhs_cli.manifest_cmd",
    "dhs_cli.inject_cmd",
    "dhs_cli.compact_cmd",
    "dhs_cli.validate_cmd",
    "dhs_cli.promote_cmd",
    "dhs_cli.verify_cmd",
    "dhs_cli.unlock_cmd",
    "dhs_cli.size_cmd",
    "dhs_cli.stage_cmd",
    "dhs_cli.gallery_cmd",
)

EPILOG = """\
examples:
  dhs demo --out demo_output                 # the whole pipeline on a synthetic mini-survey
  dhs survey synth --out demo_output/survey  # DR10-format bricks + LRG table
  dhs bank synth --out demo_output/bank      # clumpy galaxies in GalSim format -> HDF5 bank
  dhs manifest --lrg demo_output/survey/lrg.parquet --bank demo_output/bank/cosmos_bank.h5 \\
      --config demo --out demo_output/manifest
  dhs validate demo_output/phase4c --manifest demo_output/manifest --variant demo

Run `dhs COMMAND --help` for each command's own example.
Set DHS_ALLOWED_OUTPUT_ROOTS (comma-separated local roots / s3:// prefixes) to make every command
refuse to write outside them (exit 2); unset, there is no limit.
"""


def _write_targets(args) -> list[tuple[str, str]]:
    """(flag, location) of everything a command writes, for the output-root check. Commands that
    write next to their input by default (validate, promote) write under DATASET."""
    cmd = args.command
    if cmd in ("manifest", "gallery", "demo", "survey", "bank"):  # `survey info`, `bank info` have no --out
        return [("--out", args.out)] if getattr(args, "out", None) else []
    if cmd in ("inject", "compact"):
        return [("--output-prefix", args.output_prefix)]
    if cmd == "validate":
        return [("--out", args.out)] if args.out else [("DATASET", args.dataset)]
    if cmd == "stage-code":
        return [("CODE_PREFIX", args.code_prefix)]
    if cmd == "promote":
        return [("--record-out", args.record_out)] if args.record_out else [("DATASET", args.dataset)]
    return []


def check_write_targets(args) -> None:
    """Refuse, before anything runs, a command that would write outside $DHS_ALLOWED_OUTPUT_ROOTS
    (unset: no limit, for local work)."""
    from pipeline.config import allowed_output_roots, check_output_prefix  # noqa: PLC0415

    if not allowed_output_roots():
        return
    for flag, where in _write_targets(args):
        check_output_prefix(str(where), source=flag)


def add_run_param(parser: argparse.ArgumentParser, name: str, **kwargs) -> None:
    """A `dhs` flag for a run parameter (pipeline.run_params): `--<name>`, dest `<name>`. Default None
    (the step's or the run config's default applies) unless given."""
    from pipeline import run_params  # noqa: PLC0415

    rp = run_params.param(name)
    kwargs.setdefault("help", rp.description or rp.title)
    kwargs.setdefault("default", None)
    parser.add_argument(rp.cli_flag, dest=name, **kwargs)


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the examples' line breaks and shows defaults."""


class _Parser(argparse.ArgumentParser):
    """No abbreviations: `--manifest` is not `--manifest-uri` (one spelling per parameter; a
    prefix that later matches two flags would change meaning). Subcommands inherit the class."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="dhs",
        description="Dark Halo Scope: lensed COSMOS galaxies injected into DR10 LRG cutouts, validated and promoted.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name == name:  # a command not built yet; every other import error is real
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        check_write_targets(args)
        return int(args.func(args) or 0)
    except InputError as exc:
        print(f"dhs {args.command}: error: {exc.source}: {exc.problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dhs {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # `dhs ... | head` closed our stdout: not an error of ours.
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
