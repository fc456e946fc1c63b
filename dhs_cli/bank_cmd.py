"""`dhs bank`: build the COSMOS source bank from GalSim real-galaxy catalogues, make the
synthetic demo sample, and describe a bank."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from dhs_cli.main import HelpFormatter
from pipeline.errors import InputError

BUILD_EPILOG = """\
example:
  dhs bank build --catalog data/hst_galaxies/cosmos_23.5_subset/real_galaxy_catalog_23.5.fits \\
      --catalog data/hst_galaxies/aegis_f814w/AEGIS_F814w_catalog.fits --out real_bank.h5
Prints every galaxy kept and every one left out with the reason; --strict makes any left-out
galaxy an error (exit 2).
"""

SYNTH_EPILOG = """\
example:
  dhs bank synth --out demo_output/bank --n 300 --seed 1 --include-real data/hst_galaxies
Writes demo_output/bank/galsim/ (a GalSim-format catalogue of synthetic clumpy galaxies) and
builds demo_output/bank/cosmos_bank.h5 from it plus every real catalogue with images found
under --include-real.
"""

INFO_EPILOG = """\
example:
  dhs bank info demo_output/bank/cosmos_bank.h5
"""


def _add_build_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--stamp-size", type=int, default=96, help="bank stamp side, pixels")
    p.add_argument("--pixel-scale", type=float, default=0.03, help="bank pixel scale, arcsec/pixel")
    p.add_argument("--hlr-min", type=float, default=0.1, help="keep galaxies with measured hlr >= this, arcsec")
    p.add_argument("--hlr-max", type=float, default=1.0, help="keep galaxies with measured hlr <= this, arcsec")
    p.add_argument("--strict", action="store_true", help="any galaxy left out is an error")


def register(subparsers) -> None:
    bank = subparsers.add_parser(
        "bank",
        help="COSMOS source bank: build from GalSim catalogues, synthesise, inspect",
        description="Build the HDF5 COSMOS source bank from GalSim real-galaxy catalogue files.",
        epilog=BUILD_EPILOG + "\n" + SYNTH_EPILOG + "\n" + INFO_EPILOG,
        formatter_class=HelpFormatter,
    )
    sub = bank.add_subparsers(dest="bank_command", metavar="SUBCOMMAND")
    bank.set_defaults(func=lambda args: (bank.print_help(), 2)[1])

    build = sub.add_parser(
        "build", help="GalSim catalogue(s) -> HDF5 bank", epilog=BUILD_EPILOG, formatter_class=HelpFormatter,
        description="Read, verify, measure, resample and filter the galaxies of GalSim real-galaxy catalogues into a bank.",
    )
    build.add_argument("--catalog", action="append", required=True, help="main catalogue FITS file (repeatable)")
    build.add_argument("--out", required=True, help="bank HDF5 file to write")
    _add_build_options(build)
    build.set_defaults(func=_build)

    synth = sub.add_parser(
        "synth", help="synthetic clumpy galaxies in GalSim format -> bank", epilog=SYNTH_EPILOG, formatter_class=HelpFormatter,
        description="Write a synthetic GalSim-format sample and build a bank from it (optionally with real samples).",
    )
    synth.add_argument("--out", required=True, help="output folder (gets galsim/ and cosmos_bank.h5)")
    synth.add_argument("--n", type=int, default=300, help="number of synthetic galaxies")
    synth.add_argument("--seed", type=int, default=1, help="random seed (same seed, same files)")
    synth.add_argument("--include-real", metavar="DIR", help="also bank every GalSim catalogue with images found under DIR")
    _add_build_options(synth)
    synth.set_defaults(func=_synth)

    info = sub.add_parser("info", help="describe a bank", epilog=INFO_EPILOG, formatter_class=HelpFormatter)
    info.add_argument("bank", help="bank HDF5 file")
    info.set_defaults(func=_info)


def _build_kwargs(args) -> dict:
    return dict(
        stamp_size_pix=args.stamp_size,
        pixel_scale_arcsec=args.pixel_scale,
        hlr_min_arcsec=args.hlr_min,
        hlr_max_arcsec=args.hlr_max,
        strict=args.strict,
    )


def _build(args) -> int:
    from pipeline.bank.build import build_bank  # noqa: PLC0415

    report = build_bank(args.catalog, args.out, **_build_kwargs(args))
    print("\n".join(report.lines()))
    return 0


def find_real_catalogs(root: str | Path) -> list[Path]:
    """GalSim main catalogues under `root` whose image files are all present (companion
    `_fits.fits`/`_selection.fits` files and catalogues shipped without images are skipped)."""
    from pipeline.bank.galsim_catalog import catalog_has_images  # noqa: PLC0415

    root = Path(root)
    if not root.is_dir():
        raise InputError(str(root), "no such folder of GalSim catalogues")
    found = []
    for path in sorted(root.rglob("*catalog*.fits")):
        if path.name.endswith(("_fits.fits", "_selection.fits")):
            continue
        if catalog_has_images(path):
            found.append(path)
    return found


def _synth(args) -> int:
    from pipeline.bank.build import build_bank  # noqa: PLC0415
    from pipeline.bank.synth import synth_galsim_catalog  # noqa: PLC0415

    out = Path(args.out)
    catalogs = [synth_galsim_catalog(out / "galsim", args.n, args.seed)]
    if args.include_real:
        real = find_real_catalogs(args.include_real)
        if not real:
            raise InputError(args.include_real, "no GalSim catalogue with its image files found")
        catalogs += real
    report = build_bank(catalogs, out / "cosmos_bank.h5", **_build_kwargs(args))
    lines = report.lines()
    listing = out / "bank_report.txt"
    listing.write_text("\n".join(lines) + "\n")
    # Synthetic galaxies that went in cleanly are the bulk: the full listing goes to a file, the
    # terminal gets the summary, every real galaxy, and every note or rejection.
    shown = [line for line in lines[1:] if "synthetic_galaxy_catalog" not in line or "[" in line or "left out" in line]
    print("\n".join([lines[0], *shown, f"full listing: {listing}"]))
    return 0


def _info(args) -> int:
    from pipeline.bank.store import open_bank  # noqa: PLC0415

    bank = open_bank(args.bank)
    ny, nx = bank.images.shape[1:]
    print(f"bank          {bank.path}")
    print(f"galaxies      {bank.n}")
    print(f"stamp         {ny}x{nx} pixels at {bank.pixel_scale_arcsec:g} arcsec/pixel")
    print(f"hlr filter    [{bank.hlr_filter_arcsec[0]:g}, {bank.hlr_filter_arcsec[1]:g}] arcsec")
    print(f"hlr           {np.min(bank.hlr_arcsec):.3f} .. {np.max(bank.hlr_arcsec):.3f} arcsec (median {np.median(bank.hlr_arcsec):.3f})")
    print(f"flux          {np.min(bank.flux_nmgy):.4g} .. {np.max(bank.flux_nmgy):.4g} nmgy (median {np.median(bank.flux_nmgy):.4g})")
    print(f"sha256        {bank.checksum}")
    return 0
