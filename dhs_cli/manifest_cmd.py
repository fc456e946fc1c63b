"""`dhs manifest`: freeze every task of a Phase 4c run into OUT/manifest.parquet + manifest.json."""

from __future__ import annotations

from dhs_cli.main import HelpFormatter, add_run_param
from pipeline.errors import InputError

EPILOG = """\
example:
  dhs manifest --lrg demo_output/survey/lrg.parquet --cosmos-bank-h5 demo_output/bank/cosmos_bank.h5 \\
      --run-config demo --out demo_output/manifest --max-tasks 5000

prints the tasks per split and each split's control fraction; writes OUT/manifest.parquet (one row
per task, every random quantity frozen) and OUT/manifest.json (run config, counts, input sha256).
Same inputs and config -> identical manifest.
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "manifest",
        help="freeze the tasks of a run (splits, controls, lens and source parameters)",
        description="Build the Phase 4c manifest: sky-region splits, unpaired controls, SIE + shear lens and "
                    "COSMOS source parameters per task, all derived deterministically from the config's seed.",
        epilog=EPILOG,
        formatter_class=HelpFormatter,
    )
    p.add_argument("--lrg", required=True, help="Phase 3 LRG table (Parquet; local or s3://)")
    add_run_param(p, "cosmos_bank_h5", required=True, help="COSMOS bank HDF5 (local or s3://)")
    add_run_param(p, "run_config", default="demo", help="run config YAML path or built-in name (demo, production)")
    p.add_argument("--out", required=True, help="output directory (local or s3://)")
    p.add_argument("--max-tasks", type=int, default=None, help="keep a deterministic subset of at most N tasks")
    p.set_defaults(func=run)


def bank_catalog(path: str) -> tuple[int, "object", tuple[float, float], str, str]:
    """(n galaxies, hlr_arcsec array, hlr filter, sha256, local path) read from the bank's catalog only:
    the manifest needs no pixels, and a production bank's images are ~0.7 GB."""
    import h5py  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    from pipeline import storage  # noqa: PLC0415
    from pipeline.bank.store import file_sha256  # noqa: PLC0415

    local = storage.local_copy(path)
    try:
        fh = h5py.File(local, "r")
    except OSError as exc:
        raise InputError(path, f"not an HDF5 COSMOS bank ({exc})") from None
    with fh:
        if "images" not in fh or "catalog" not in fh or "hlr_arcsec" not in fh["catalog"]:
            raise InputError(path, "bank needs /images and /catalog/hlr_arcsec")
        if "hlr_filter_arcsec" not in fh.attrs:
            raise InputError(path, "bank is missing attribute hlr_filter_arcsec")
        n = int(fh["images"].shape[0])
        hlr = np.asarray(fh["catalog"]["hlr_arcsec"][...], dtype=float)
        lo, hi = (float(v) for v in fh.attrs["hlr_filter_arcsec"])
    if n == 0 or hlr.shape != (n,):
        raise InputError(path, f"bank has {n} images and {hlr.size} catalogue radii")
    return n, hlr, (lo, hi), file_sha256(local), local


def bank_photometry(local_path: str) -> dict:
    """{"mag_f814w", "zphot"}: the physical source model's per-galaxy inputs (None when the bank
    has no such column)."""
    import h5py  # noqa: PLC0415
    import numpy as np  # noqa: PLC0415

    with h5py.File(local_path, "r") as fh:
        cat = fh["catalog"]
        return {k: (np.asarray(cat[k][...], dtype=float) if k in cat else None) for k in ("mag_f814w", "zphot")}


def run(args) -> int:
    from pipeline.config import SPLITS, load_run_config  # noqa: PLC0415
    from pipeline.manifest import build_manifest, manifest_counts, write_manifest  # noqa: PLC0415
    from pipeline.survey.lrg_table import read_lrg_table  # noqa: PLC0415

    config = load_run_config(args.run_config)
    lrg = read_lrg_table(args.lrg)
    n_bank, hlr, hlr_filter, bank_sha, local = bank_catalog(args.cosmos_bank_h5)
    phot = bank_photometry(local)
    df = build_manifest(lrg, config, n_bank, hlr, hlr_filter_arcsec=hlr_filter, max_tasks=args.max_tasks,
                        source=args.lrg, bank_mag_f814w=phot["mag_f814w"], bank_zphot=phot["zphot"])
    write_manifest(df, args.out, config, {"lrg": args.lrg, "bank": {"uri": args.cosmos_bank_h5, "sha256": bank_sha}})
    counts = manifest_counts(df)
    print(f"manifest: {len(df)} tasks from {df['lrg_id'].nunique()} LRGs -> {args.out}")
    print(f"{'split':6} {'tasks':>8} {'control':>8} {'inject':>8} {'ctrl frac':>9} {'target':>7} {'regions':>8}")
    for split in SPLITS:
        c = counts[split]
        frac = f"{c['control_frac']:.3f}" if c["control_frac"] is not None else "-"
        print(f"{split:6} {c['tasks']:8d} {c['control']:8d} {c['injection']:8d} {frac:>9} "
              f"{config.control_frac[split]:7.3f} {c['regions']:8d}")
    return 0
