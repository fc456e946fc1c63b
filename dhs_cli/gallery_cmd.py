"""`dhs gallery`: a PNG of example stamps, from rendered rows or straight from a manifest."""

from __future__ import annotations

from dhs_cli.main import HelpFormatter, add_run_param
from pipeline.errors import InputError

EPILOG = """\
examples:
  dhs gallery --rows demo_output/phase4c --n 16 --out gallery.png
  dhs gallery --manifest demo_output/manifest --coadd-cache demo_output/survey/coadd \\
      --bank demo_output/bank/cosmos_bank.h5 --n 16 --out gallery.png

--rows takes a Parquet file or a dataset directory in the data contract's format; --manifest
renders the first N injection tasks (and a quarter as many controls) with inject_task.
Each stamp: grz composite (asinh), cyan contour = arc footprint (r-band arc >= 10% of its peak).
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "gallery",
        help="PNG of example stamps",
        description="Draw N example stamps (grz composite, arc contour, captions with theta_E, source r mag, "
                    "arc_snr, magnification, PSF FWHM; controls labelled).",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--rows", help="Parquet file or dataset directory of contract rows")
    add_run_param(p, "manifest_uri", help="manifest directory (or manifest.parquet) to render directly")
    add_run_param(p, "coadd_cache_prefix", help="coadd cache prefix (with --manifest-uri), e.g. S/coadd")
    add_run_param(p, "cosmos_bank_h5", help="COSMOS bank HDF5 (with --manifest-uri)")
    p.add_argument("--n", type=int, default=16, help="number of stamps")
    p.add_argument("--ncols", type=int, default=4, help="stamps per row")
    p.add_argument("--out", required=True, help="output PNG path")
    p.set_defaults(func=run)


def run(args) -> int:
    from pipeline.gallery import read_rows, render_from_manifest, render_gallery, select_rows  # noqa: PLC0415

    if args.n < 1:
        raise InputError("--n", f"must be >= 1, got {args.n}")
    if bool(args.rows) == bool(args.manifest_uri):
        raise InputError("--rows/--manifest-uri", "give exactly one of --rows or --manifest-uri")
    if args.rows:
        rows = read_rows(args.rows, args.n)
        title = f"{args.rows}: {len(rows)} stamps"
    else:
        missing = [f for f, v in (("--coadd-cache-prefix", args.coadd_cache_prefix),
                                  ("--cosmos-bank-h5", args.cosmos_bank_h5)) if not v]
        if missing:
            raise InputError(" ".join(missing), "required with --manifest-uri")
        rows = select_rows(render_from_manifest(args.manifest_uri, args.coadd_cache_prefix, args.cosmos_bank_h5, args.n), args.n)
        title = f"{args.manifest_uri}: first {len(rows)} tasks rendered"
    out = render_gallery(rows, args.out, ncols=args.ncols, title=title)
    ok = sum(1 for r in rows if r.get("cutout_ok"))
    print(f"wrote {out}: {len(rows)} stamps ({ok} ok, {sum(1 for r in rows if r.get('is_control'))} controls)")
    return 0
