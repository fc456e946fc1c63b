"""A PNG gallery of example stamps: grz composite (asinh stretch), arc contour, captions.

Rows are contract records (dicts or a DataFrame with the contract's columns). Colour: R = z,
G = r, B = g, each band asinh-stretched with one common softening so colours stay comparable
between stamps. The contour is the arc's footprint as used by arc_snr (r-band arc >= 10% of its
peak, pipeline.injection.metrics). The "arc only" panel beside each stamp has its own stretch
(arc_panel; its top is printed on the panel), so faint arcs stay visible. Captions: theta_E,
source r mag, arc_snr, magnification and the r-band PSF FWHM; controls are labelled CONTROL;
failed rows show their error.
"""

from __future__ import annotations

import textwrap
from typing import Iterable, Mapping, Sequence

import numpy as np

from pipeline.bands import BAND_TABLE
from pipeline.contract import BANDS, STAMP_SIZE_PIX
from pipeline.injection.metrics import FOOTPRINT_PEAK_FRACTION

#: asinh softening in nanomaggies per pixel: below ~this the stretch is linear (sky noise level).
ASINH_SOFTENING_NMGY = 0.02
#: relative band weights (g 2.2, r 1.4, z 1.0: a red LRG looks yellow-orange and a blue arc blue)
#: and the band shown in each of the R, G, B channels (z, r, g), from the band table (pipeline.bands)
BAND_WEIGHTS = {b.name: b.gallery_weight for b in BAND_TABLE}
RGB_BANDS = tuple(next((b.name for b in BAND_TABLE if b.gallery_channel == c), None) for c in "RGB")


def _stamp(values, nb: int = len(BANDS), size: int = STAMP_SIZE_PIX) -> np.ndarray | None:
    if values is None:
        return None
    arr = np.asarray(values, dtype=np.float64)
    return arr.reshape(nb, size, size) if arr.size == nb * size * size else arr.reshape(size, size)


def grz_composite(image: np.ndarray, bands: Sequence[str] = BANDS, softening: float = ASINH_SOFTENING_NMGY,
                  max_nmgy: float | None = None) -> np.ndarray:
    """[nb, y, x] nanomaggies -> [y, x, 3] RGB in [0, 1] (R = z, G = r, B = g), asinh stretch.
    Rows are [y, x] with y increasing downwards in the PNG (origin='lower' is applied by the caller)."""
    chan = {b: image[i] * BAND_WEIGHTS.get(b, 1.0) for i, b in enumerate(bands)}
    planes = [chan.get(b, np.zeros(image.shape[1:])) for b in RGB_BANDS]
    rgb = np.stack(planes, axis=-1)
    top = max_nmgy if max_nmgy is not None else np.percentile(rgb, 99.7)
    top = max(float(top), 10 * softening)
    return np.clip(np.arcsinh(rgb / softening) / np.arcsinh(top / softening), 0.0, 1.0)


def arc_panel(arc: np.ndarray, bands: Sequence[str] = BANDS) -> tuple[np.ndarray, float]:
    """(RGB, top nmgy) of the arc alone on its own stretch: the composite's stretch is set by the
    LRG, tens to thousands of times brighter than a faint arc, which then shows as black. The
    softening scales with the arc's top too, so a faint arc is not pushed into the linear part."""
    weighted = np.stack([arc[i] * BAND_WEIGHTS.get(b, 1.0) for i, b in enumerate(bands)])
    top = float(np.percentile(weighted.max(axis=0), 99.7))
    if not top > 0:
        top = float(weighted.max()) if weighted.max() > 0 else 1.0
    softening = min(ASINH_SOFTENING_NMGY, top / 10)
    return grz_composite(arc, bands, softening=softening, max_nmgy=top), top


def caption(row: Mapping) -> str:
    if not row.get("cutout_ok", True):
        return "FAILED: " + textwrap.shorten(str(row.get("cutout_error")), 70, placeholder="...").replace(": ", ":\n", 1)
    if row.get("is_control"):
        return f"CONTROL lrg {row.get('lrg_id')}\nPSF r {row.get('psfsize_r') or float('nan'):.2f}\""

    def f(name, fmt):
        v = row.get(name)
        return format(v, fmt) if v is not None and np.isfinite(v) else "?"

    return (f"θE {f('theta_e_arcsec', '.2f')}\"  src r {f('src_mag_r', '.1f')}\n"
            f"SNR {f('arc_snr', '.1f')}  μ {f('magnification', '.1f')}  PSF r {f('psf_fwhm_r', '.2f')}\"")


def select_rows(rows: Iterable[Mapping], n: int, control_share: float = 0.25) -> list[Mapping]:
    """First ok injections, then first ok controls (about control_share of n), in input order."""
    rows = list(rows)
    inj = [r for r in rows if r.get("cutout_ok") and not r.get("is_control")]
    ctl = [r for r in rows if r.get("cutout_ok") and r.get("is_control")]
    n_ctl = min(len(ctl), int(round(n * control_share)))
    picked = inj[: n - n_ctl] + ctl[:n_ctl]
    if len(picked) < n:  # pad with whatever is left (failed rows show their error)
        rest = [r for r in rows if not any(r is p for p in picked)]
        picked += rest[: n - len(picked)]
    return picked


def render_gallery(rows: Sequence[Mapping], out_png: str, ncols: int = 4, title: str | None = None,
                   bands: Sequence[str] = BANDS) -> str:
    """Draw the rows (contract records) into a PNG grid; returns the path written."""
    import matplotlib  # noqa: PLC0415 - only the gallery needs it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    n = max(1, len(rows))
    ncols = max(1, min(ncols, n))
    nrows = int(np.ceil(n / ncols))
    # each stamp gets two panels: the grz stamp (LRG + arc) and the arc alone on its own stretch
    fig, axes = plt.subplots(nrows, 2 * ncols, figsize=(3.6 * ncols, 2.25 * nrows), squeeze=False,
                             gridspec_kw={"wspace": 0.02, "hspace": 0.45})
    r_index = list(bands).index("r") if "r" in bands else 0
    for ax in axes.ravel():
        ax.set_axis_off()
    for k, row in enumerate(rows):
        ax, ax_arc = axes[k // ncols, 2 * (k % ncols)], axes[k // ncols, 2 * (k % ncols) + 1]
        image = _stamp(row.get("image"), len(bands))
        arc = _stamp(row.get("arc"), len(bands))
        if image is not None:
            top = float(np.percentile(image.max(axis=0), 99.7))
            ax.imshow(grz_composite(image, bands, max_nmgy=top), origin="lower", interpolation="nearest")
            if arc is not None and arc[r_index].max() > 0:
                ax.contour(arc[r_index], levels=[FOOTPRINT_PEAK_FRACTION * arc[r_index].max()],
                           colors=["cyan"], linewidths=0.7, origin="lower")
                rgb, arc_top = arc_panel(arc, bands)
                ax_arc.imshow(rgb, origin="lower", interpolation="nearest")
                ax_arc.text(2, 2, f"arc only, own stretch\n(top {arc_top:.2g} vs {top:.2g} nmgy)", color="white",
                            fontsize=5.5)
        ax.text(0.0, 1.03, caption(row), transform=ax.transAxes, fontsize=7, va="bottom", ha="left")
    if title:
        fig.suptitle(title, fontsize=10)
    import io  # noqa: PLC0415

    from pipeline import storage  # noqa: PLC0415

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    storage.write_bytes(str(out_png), buf.getvalue())
    return str(out_png)


def read_rows(uri: str, n: int, control_share: float = 0.25) -> list[dict]:
    """Up to n contract rows from a Parquet file or a dataset directory (hive-partitioned by
    region_split), picked by select_rows from the first rows read (only as many as needed)."""
    import pyarrow.dataset as ds  # noqa: PLC0415

    from pipeline import storage  # noqa: PLC0415
    from pipeline.errors import InputError  # noqa: PLC0415

    path = str(uri)
    if storage.is_s3(path):
        raise InputError(path, "the gallery reads local rows; copy them locally first (aws s3 sync)")
    try:
        dataset = ds.dataset(path, format="parquet", partitioning="hive")
    except (FileNotFoundError, OSError, ValueError) as exc:
        raise InputError(path, f"cannot read Parquet rows ({exc})") from None
    names = set(dataset.schema.names)
    missing = [c for c in ("image", "cutout_ok", "is_control") if c not in names]
    if missing:
        raise InputError(path, f"not contract rows: missing column(s) {missing}")
    # Scan batch by batch and stop once there are enough of both kinds (Arrow cannot filter
    # fixed-size-list columns holding nulls, e.g. the controls' arc, so no pushed-down filter).
    inj, ctl, other = [], [], []
    n_ctl = int(round(n * control_share))
    for batch in dataset.to_batches():
        for row in batch.to_pylist():
            if not row.get("cutout_ok"):
                other.append(row)
            elif row.get("is_control"):
                ctl.append(row)
            else:
                inj.append(row)
        if len(inj) >= n and len(ctl) >= n_ctl:
            break
    if not inj and not ctl and not other:
        raise InputError(path, "no rows")
    return select_rows(inj[:n] + ctl[:n] + other[:n], n, control_share)


def render_from_manifest(manifest_uri: str, coadd_cache: str, bank_path: str, n: int,
                         run_id: str = "gallery") -> list[dict]:
    """Render the first n injection tasks of a manifest directly with inject_task (plus a few
    controls), loading each needed brick once."""
    import json  # noqa: PLC0415

    from pipeline import __version__, storage  # noqa: PLC0415
    from pipeline.bank.store import open_bank  # noqa: PLC0415
    from pipeline.config import RunConfig  # noqa: PLC0415
    from pipeline.injection.task import RunContext, failed_record, inject_task  # noqa: PLC0415
    from pipeline.errors import InputError  # noqa: PLC0415
    from pipeline.manifest import read_manifest  # noqa: PLC0415
    from pipeline.survey.coadds import load_brick  # noqa: PLC0415

    df = read_manifest(manifest_uri)
    json_uri = storage.join(str(manifest_uri), "manifest.json") if not str(manifest_uri).endswith(".parquet") else \
        str(manifest_uri)[: -len(".parquet")] + ".json"
    try:
        config = RunConfig(**{k: v for k, v in json.loads(storage.read_bytes(json_uri))["config"].items()})
    except InputError:
        config = RunConfig()
    n_ctl = int(round(n * 0.25))
    tasks = _first_tasks(df, n - n_ctl, n_ctl)
    bank = open_bank(storage.local_copy(bank_path))
    ctx = RunContext(run_id=run_id, pipeline_version=__version__, config=config)
    rows = []
    for brickname, group in tasks.groupby("brickname", sort=False):
        try:
            brick = load_brick(coadd_cache, brickname, config.bands)
        except InputError as exc:
            rows += [failed_record(t, f"brick {brickname} cannot be loaded: {exc}", ctx) for t in group.to_dict("records")]
            continue
        rows += [inject_task(t, brick, bank, ctx) for t in group.to_dict("records")]
    order = {tid: i for i, tid in enumerate(tasks["task_id"])}
    return sorted(rows, key=lambda r: order[r["task_id"]])


def _first_tasks(df, n_inj: int, n_ctl: int):
    """The first n_inj injection tasks and first n_ctl control tasks of a manifest, in file order."""
    import pandas as pd  # noqa: PLC0415

    return pd.concat([df[~df["is_control"]].head(n_inj), df[df["is_control"]].head(n_ctl)])
