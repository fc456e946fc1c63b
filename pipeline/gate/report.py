"""The human report: out/report/index.html with PNG plots and a stamp gallery.

Plots are drawn from the profile's Spark-aggregated histograms (never from collected rows); the
gallery reads the pixel arrays of a bounded handful of rows (GALLERY_ROWS).
"""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from pipeline.contract import BANDS, STAMP_SIZE_PIX

GALLERY_ROWS = 8


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _centres(h, n):
    lo, hi = h["lo"], h["hi"]
    c = lo + (np.arange(n) + 0.5) * (hi - lo) / n
    return 10**c if h.get("log10") else c


def _hist_plot(out, name, profile, var, xlabel, by_label=False):
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for split, hs in profile["histograms"].items():
        h = hs.get(var)
        if not h:
            continue
        labels = (("control", "--"), ("injection", "-")) if by_label else (("injection", "-"),)
        for label, ls in labels:
            counts = np.asarray(h[label], float)
            if counts.sum():
                ax.step(_centres(h, len(counts)), counts / counts.sum(), ls, where="mid",
                        label=f"{split} {label}" if by_label else split)
    if profile["histograms"] and any(h.get(var, {}).get("log10") for h in profile["histograms"].values()):
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("fraction")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def _hist2d_plot(out, name, profile, var, xlabel):
    plt = _plt()
    total = None
    spec = None
    for hs in profile["histograms"].values():
        h = hs.get(var)
        if h:
            spec = h
            c = np.asarray(h["injection"], float)
            total = c if total is None else total + c
    if total is None:
        return None
    (xlo, xhi, xn, _), (ylo, yhi, yn, _) = spec["x"], spec["y"]
    fig, ax = plt.subplots(figsize=(5, 3.2))
    im = ax.imshow(total.reshape(xn, yn).T, origin="lower", aspect="auto", extent=[xlo, xhi, ylo, yhi], cmap="viridis")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("log10 arc_snr")
    fig.colorbar(im, ax=ax, label="injections")
    fig.tight_layout()
    fig.savefig(out / name, dpi=90)
    plt.close(fig)
    return name


def grz_composite(image_flat, stretch=0.02):
    """RGB (z, r, g) with an asinh stretch per stamp; 64x64x3 floats in [0, 1]."""
    img = np.asarray(image_flat, dtype=np.float32).reshape(len(BANDS), STAMP_SIZE_PIX, STAMP_SIZE_PIX)
    rgb = np.stack([img[2], img[1], img[0]], axis=-1)
    rgb = np.nan_to_num(rgb)
    scale = np.percentile(np.abs(rgb), 99.5) or 1.0
    out = np.arcsinh(rgb / (stretch * scale)) / np.arcsinh(1 / stretch)
    return np.clip(out, 0, 1)


def _gallery(out, df):
    from pyspark.sql import functions as F

    plt = _plt()
    cols = ["task_id", "region_split", "is_control", "theta_e_arcsec", "arc_snr", "psfsize_r", "image"]
    ok = df.where(F.col("cutout_ok") & F.col("image").isNotNull())
    rows = (ok.where(~F.col("is_control")).select(*cols).limit(GALLERY_ROWS * 3 // 4).collect()
            + ok.where(F.col("is_control")).select(*cols).limit(GALLERY_ROWS // 4).collect())
    items = []
    for i, r in enumerate(rows):
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.imshow(grz_composite(r["image"]), origin="lower")
        ax.axis("off")
        fig.tight_layout(pad=0)
        name = f"stamp_{i}.png"
        fig.savefig(out / name, dpi=80)
        plt.close(fig)
        cap = (f"{r['task_id']} ({r['region_split']}) CONTROL, PSF {r['psfsize_r']:.2f}\"" if r["is_control"] else
               f"{r['task_id']} ({r['region_split']}) theta_E {r['theta_e_arcsec']:.2f}\", "
               f"arc_snr {r['arc_snr']:.1f}, PSF {r['psfsize_r']:.2f}\"")
        items.append((name, cap))
    return items


def write_report(out_dir, profile: dict, results: list[dict], failures: list[str], *, df=None, title="") -> str:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    plots = [
        _hist_plot(out, "arc_snr.png", profile, "arc_snr", "arc_snr (r band)"),
        _hist_plot(out, "theta_e.png", profile, "theta_e", "theta_E (arcsec)"),
        _hist_plot(out, "psfsize_r.png", profile, "psfsize_r", "PSF FWHM r (arcsec), control vs injection", by_label=True),
        _hist_plot(out, "magnification.png", profile, "magnification", "magnification"),
        _hist_plot(out, "psfdepth_r.png", profile, "psfdepth_r", "psfdepth r (mag), control vs injection", by_label=True),
        _hist_plot(out, "lens_mag_r.png", profile, "lens_mag_r", "lens r mag, control vs injection", by_label=True),
        _hist2d_plot(out, "arc_snr_vs_theta_e.png", profile, "arc_snr_vs_theta_e", "theta_E (arcsec)"),
        _hist2d_plot(out, "arc_snr_vs_theta_over_psf.png", profile, "arc_snr_vs_theta_over_psf", "theta_E / PSF FWHM"),
    ]
    gallery = _gallery(out, df) if df is not None else []
    e = html.escape
    rows = "".join(
        f"<tr class={'ok' if r['success'] else 'bad'}><td>{e(r['name'])}</td><td>{'pass' if r['success'] else 'FAIL'}</td>"
        f"<td>{e(r['metric'])}</td><td>{e(', '.join(f'{k}={v:.4g}' if isinstance(v, float) else f'{k}={v}' for k, v in r['observed'].items()))}</td>"
        f"<td>{e(r['expected'])}</td><td>{e(r['why'])}</td></tr>" for r in results)
    fails = "".join(f"<li>{e(f)}</li>" for f in failures) or "<li>none</li>"
    imgs = "".join(f'<img src="{p}">' for p in plots if p)
    gal = "".join(f'<figure><img src="{n}"><figcaption>{e(c)}</figcaption></figure>' for n, c in gallery)
    verdict = "PASSED" if not failures else "FAILED"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>DHS gate report</title>
<style>body{{font-family:sans-serif;margin:2em}} .ok td{{background:#eefbee}} .bad td{{background:#fde8e8}}
td,th{{padding:3px 8px;border-bottom:1px solid #ddd;font-size:13px}} figure{{display:inline-block;margin:4px;width:180px;font-size:11px}}
img{{margin:4px}}</style></head><body>
<h1>Gate {verdict}: {e(title)}</h1><p>Rows: {profile['all']['rows']} (all rows profiled); see also ../data_docs/index.html</p>
<h2>Failures</h2><ul>{fails}</ul>
<h2>Checks</h2><table><tr><th>check</th><th>result</th><th>metric</th><th>observed</th><th>expected</th><th>why</th></tr>{rows}</table>
<h2>Distributions</h2>{imgs}
<h2>Example stamps (g,r,z composite, asinh stretch)</h2>{gal}
</body></html>"""
    (out / "index.html").write_text(page)
    return str(out / "index.html")
