"""`dhs survey`: make a synthetic DR10-format mini-survey, or describe an existing one."""

from __future__ import annotations

import argparse

from dhs_cli.main import HelpFormatter
from pipeline.bands import BANDS
from pipeline.survey.synth import SynthParams, read_survey_info, synth_survey

EPILOG = """\
examples:
  dhs survey synth --out demo_output/survey              # the demo survey (24 bricks, ~6,000 LRGs)
  dhs survey synth --out /tmp/s --n-bricks 2 --brick-size 256 --lrgs-per-brick 30 --seed 7
  dhs survey info demo_output/survey

The coadd cache prefix to give the injection is OUT/coadd; the LRG table is OUT/lrg.parquet.
"""

SYNTH_EPILOG = """\
example:
  dhs survey synth --out demo_output/survey --seed 20260204

writes OUT/coadd/<brick>/legacysurvey-<brick>-{image,invvar,psfsize}-{g,r,z}.fits.fz and
-maskbits.fits.fz (DR10 format), OUT/lrg.parquet and OUT/survey.json. Same seed, same files.
"""

INFO_EPILOG = """\
example:
  dhs survey info demo_output/survey
"""


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "survey",
        help="synthetic DR10-format bricks + LRG table",
        description="DR10-format survey inputs: brick coadds (.fits.fz) and the Phase 3 LRG table.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    sub = parser.add_subparsers(dest="survey_command", metavar="SUBCOMMAND")

    synth = sub.add_parser(
        "synth",
        help="write a synthetic mini-survey",
        description="Write a deterministic synthetic mini-survey in the DR10 coadd format: de Vaucouleurs "
                    "LRGs, sky noise at DR10 depths, per-band Moffat PSFs varying across and inside bricks, "
                    "bright stars with DR10 maskbits, some LRGs at brick edges.",
        epilog=SYNTH_EPILOG,
        formatter_class=HelpFormatter,
    )
    synth.add_argument("--out", required=True, help="output directory (local path or s3:// URI)")
    synth.add_argument("--seed", type=int, default=SynthParams.seed, help="master seed")
    synth.add_argument("--n-bricks", type=int, default=SynthParams.n_bricks, help="number of bricks")
    synth.add_argument("--brick-size", type=int, default=SynthParams.brick_size_pix,
                       help="brick width and height in pixels (DR10: 3600)")
    synth.add_argument("--lrgs-per-brick", type=int, default=SynthParams.lrgs_per_brick, help="LRGs per brick")
    synth.add_argument("--edge-frac", type=float, default=SynthParams.edge_frac,
                       help="fraction of LRGs whose 64x64 cutout leaves the brick")
    synth.add_argument("--quiet", action="store_true", help="no per-brick progress lines")
    synth.set_defaults(func=run_synth)

    info = sub.add_parser(
        "info",
        help="describe an existing synthetic survey",
        description="Print what survey.json records about a survey made by `dhs survey synth`.",
        epilog=INFO_EPILOG,
        formatter_class=HelpFormatter,
    )
    info.add_argument("dir", help="survey directory (holds survey.json)")
    info.set_defaults(func=run_info)

    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])


def _mb(n: int) -> str:
    return f"{n / 1e6:.1f} MB"


def run_synth(args: argparse.Namespace) -> int:
    def progress(line: str) -> None:
        if not args.quiet:
            print(f"  {line}", flush=True)

    summary = synth_survey(
        args.out, seed=args.seed, n_bricks=args.n_bricks, brick_size_pix=args.brick_size,
        lrgs_per_brick=args.lrgs_per_brick, edge_frac=args.edge_frac, progress=progress,
    )
    print(f"survey written to {summary['out_dir']} in {summary['elapsed_s']:.1f} s")
    print(f"  bricks:                {summary['n_bricks']}")
    print(f"  LRGs:                  {summary['n_lrg']}")
    print(f"  LRGs with full 64x64 cutouts: {summary['n_lrg_cutout_inside']} "
          f"in {summary['n_regions_0p1deg']} sky regions of 0.1 deg")
    print(f"  bytes on disk:         {summary['bytes']} ({_mb(summary['bytes'])})")
    print(f"  coadd cache prefix:    {summary['coadd_prefix']}")
    print(f"  LRG table:             {summary['lrg_table']}")
    return 0


def run_info(args: argparse.Namespace) -> int:
    info = read_survey_info(args.dir)
    totals, params = info["totals"], info["parameters"]
    print(f"survey {args.dir} (seed {info['seed']}, pipeline {info['pipeline_version']})")
    print(f"  bricks: {totals['n_bricks']} of {params['brick_size_pix']}x{params['brick_size_pix']} pixels")
    print(f"  LRGs: {totals['n_lrg']}, with full 64x64 cutouts: {totals['n_lrg_cutout_inside']} "
          f"in {totals['n_regions_0p1deg']} sky regions of 0.1 deg")
    print(f"  coadds + table: {_mb(totals['bytes_coadds_and_table'])}")
    print(f"  coadd cache prefix: {args.dir.rstrip('/')}/{info['layout']['coadd_prefix']}")
    print(f"  LRG table: {args.dir.rstrip('/')}/{info['layout']['lrg_table']}")
    bands = [k for k in BANDS if k in info["bricks"][0]["psf_fwhm_center_arcsec"]] if info["bricks"] else list(BANDS)
    names = "/".join(bands)
    print(f"  brick      ra        dec      psf {names} (\")      depth {names} (mag)   LRGs  stars")
    for b in info["bricks"]:
        psf = "/".join(f"{b['psf_fwhm_center_arcsec'][k]:.2f}" for k in bands)
        depth = "/".join(f"{b['psfdepth_center_mag'][k]:.2f}" for k in bands)
        print(f"  {b['brickname']}  {b['ra']:9.4f} {b['dec']:8.4f}  {psf:17s}  {depth:18s}  "
              f"{b['n_lrg']:4d}  {len(b['stars'])}")
    return 0
