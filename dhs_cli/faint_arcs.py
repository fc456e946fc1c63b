"""Stored faint arcs of a dataset against lenstronomy's sub-grid render (issue 16, docs/physics.md).

    python -m dhs_cli.faint_arcs DEMO_OUT [--supersampling 8,16] [--n 25]

The n faintest ok injections by r-band arc flux of DEMO_OUT/dataset/compacted (every split) are
re-rendered from their own row parameters, with the bank of DEMO_OUT/bank, by
`reference.lenstronomy_image_model_render` at each supersampling given (a fresh ImageModel, PSF
convolved on the sub-grid), and by our `render.render_arc`. Printed per row: arc_snr, L1 of the
STORED r arc against each reference, L1 of our unrounded render against each, and the first
reference against the last (how far the references themselves are from converged). Summary: min,
median, max and the count above 1% of each column.

An audit script, not pipeline code: it reads a finished demo's files, so it lives with the command
line (docs/architecture.md). Bad input (no dataset, no bank, a bad --supersampling) is printed as
one line naming the input and exits 2, as `dhs` does.
"""

from __future__ import annotations

import argparse
import glob
import sys
from pathlib import Path

import numpy as np

from pipeline.errors import InputError

PROG = "python -m dhs_cli.faint_arcs"


def main(argv: list[str] | None = None) -> int:
    """Run the audit; bad input is one line on stderr naming the input, exit 2 (as `dhs`)."""
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("out", type=Path, help="a demo output folder (dataset/compacted and bank/cosmos_bank.h5)")
    ap.add_argument("--supersampling", default="8,16", help="comma-separated lenstronomy supersampling factors")
    ap.add_argument("--n", type=int, default=25, help="how many of the faintest arcs")
    args = ap.parse_args(argv)
    if args.n < 1:
        ap.error(f"--n must be at least 1, got {args.n}")
    try:
        return _audit(args)
    except InputError as exc:
        print(f"{PROG}: error: {exc.source}: {exc.problem}", file=sys.stderr)
        return 2


def _audit(args: argparse.Namespace) -> int:
    files = sorted(glob.glob(str(args.out / "dataset" / "compacted" / "**" / "*.parquet"), recursive=True))
    if not files:
        raise InputError(str(args.out), "no Parquet file under dataset/compacted")
    bank_path = args.out / "bank" / "cosmos_bank.h5"
    if not bank_path.is_file():
        raise InputError(str(bank_path), "no bank file")
    try:
        sss = [int(x) for x in args.supersampling.split(",")]
    except ValueError:
        raise InputError("--supersampling", f"need comma-separated integers, got {args.supersampling!r}") from None

    import pyarrow as pa  # noqa: PLC0415
    import pyarrow.parquet as pq  # noqa: PLC0415

    from pipeline.bank.store import open_bank  # noqa: PLC0415
    from pipeline.injection.psf import MoffatPSF  # noqa: PLC0415
    from pipeline.injection.reference import l1_relative, lenstronomy_psf_render  # noqa: PLC0415
    from pipeline.injection.render import LensParams, SourcePlacement, render_arc  # noqa: PLC0415

    t = pa.concat_tables([pq.read_table(f) for f in files]).to_pandas()
    t = t[(~t.is_control.astype(bool)) & t.cutout_ok.astype(bool)].sort_values("arc_flux_r").head(args.n)
    bank = open_bank(bank_path)
    rows = []
    for _, r in t.iterrows():
        lens = LensParams(r.theta_e_arcsec, r.lens_e1, r.lens_e2, r.shear_gamma1, r.shear_gamma2, r.lens_x_arcsec, r.lens_y_arcsec)
        src = SourcePlacement(r.src_x_arcsec, r.src_y_arcsec, r.src_phi_rad)
        stamp = bank.image(int(r.cosmos_index))
        stored = np.asarray(r.arc, dtype=float).reshape(3, 64, 64)[1]
        flux = 10 ** ((22.5 - r.src_mag_r) / 2.5)
        psf = MoffatPSF.from_row(r, ("r",))  # the PSF this row was rendered with, r band only
        ours = render_arc(stamp, bank.pixel_scale_arcsec, lens, src, [flux], psf).arcs[0].astype(float)
        refs = [flux * lenstronomy_psf_render(stamp, lens, src, psf, "r", supersampling=ss) for ss in sss]
        row = [float(r.arc_snr)] + [l1_relative(stored, x) for x in refs] + [l1_relative(ours, x) for x in refs]
        if len(refs) > 1:
            row.append(l1_relative(refs[0], refs[-1]))
        rows.append(row)
        print(f"cosmos_index {int(r.cosmos_index):4d} " + " ".join(f"{x:.4f}" for x in row), flush=True)
    if not rows:
        raise InputError(str(args.out), "no ok injection row (cutout_ok, not a control) in dataset/compacted")
    names = ["arc_snr"] + [f"stored vs ss{s}" for s in sss] + [f"render vs ss{s}" for s in sss]
    if len(sss) > 1:
        names.append(f"ss{sss[0]} vs ss{sss[-1]}")
    res = np.array(rows)
    for k, name in enumerate(names):
        c = res[:, k]
        print(f"{name}: min {c.min():.4f} median {np.median(c):.4f} max {c.max():.4f} above 0.01: {int((c > 0.01).sum())}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
