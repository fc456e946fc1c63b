"""The human report: out/report/index.html with PNG plots, the seed's review questions answered
from this dataset, and a stamp gallery.

Plots are drawn from the profile's Spark-aggregated histograms (never from collected rows); the
gallery reads the pixel arrays of a bounded handful of rows (GALLERY_ROWS); the seed questions
use the profile plus a bounded sample of ok injection rows (SEED_SAMPLE_ROWS scalar values and one
boolean per row computed by Spark from the r-band arc, see `seed_sample`). The answers are also
written next to the page as seed_questions.json.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from pipeline.bands import REFERENCE_BAND
from pipeline.contract import BANDS, STAMP_SIZE_PIX
from pipeline.gallery import RGB_BANDS

GALLERY_ROWS = 8
#: Ok injection rows read for the seed questions that the profile cannot answer (arc_masked_frac,
#: footprint at the stamp edge, arc_snr at theta_E ~1"): the first rows Spark reads, not random.
SEED_SAMPLE_ROWS = 5000
SEED_SAMPLE_COLUMNS = ("region_split", "arc_snr", "arc_masked_frac", "theta_e_arcsec", "psf_fwhm_r", "src_dmag",
                       "magnification")


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
    rgb = np.stack([img[BANDS.index(b)] if b else np.zeros_like(img[0]) for b in RGB_BANDS], axis=-1)
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


def spark_footprint_touches_edge(arc_col):
    """Spark column mirroring seed_questions.footprint_touches_edge on the r band of the flat
    [band, y, x] arc array: a footprint pixel (>= FOOTPRINT_PEAK_FRACTION of the r peak, peak > 0)
    on the stamp's outer ring. Native column expressions, no Python UDF."""
    from pyspark.sql import functions as F

    from pipeline.injection.metrics import FOOTPRINT_PEAK_FRACTION

    n = STAMP_SIZE_PIX
    r_offset = BANDS.index(REFERENCE_BAND) * n * n
    peak = F.array_max(F.slice(arc_col, r_offset + 1, n * n)).cast("double")
    # The outer ring's 4n-4 pixels as one array of direct lookups: a higher-order function over
    # all n*n pixels re-evaluated the slice per element (minutes per thousand rows).
    ring = sorted({i for i in range(n * n) if i < n or i >= n * (n - 1) or i % n in (0, n - 1)})
    ring_max = F.array_max(F.array(*[F.element_at(arc_col, r_offset + i + 1) for i in ring])).cast("double")
    return F.coalesce((peak > 0) & (ring_max >= peak * F.lit(FOOTPRINT_PEAK_FRACTION)), F.lit(False))


def seed_sample(df, n: int = SEED_SAMPLE_ROWS):
    """pandas frame of up to n ok injection rows: SEED_SAMPLE_COLUMNS + footprint_touches_edge."""
    from pyspark.sql import functions as F

    cols = [c for c in SEED_SAMPLE_COLUMNS if c in df.columns]
    rows = df.where((~F.col("is_control")) & F.col("cutout_ok"))
    extra = [spark_footprint_touches_edge(F.col("arc")).alias("footprint_touches_edge")] if "arc" in df.columns else []
    return rows.select(*cols, *extra).limit(n).toPandas()


def _seed_section(answers: dict) -> str:
    e = html.escape
    items = "".join(
        f"<tr><td><b>{e(q['id'])}</b></td><td>{e(q['question'])}</td><td>{e(q['answer'])}</td><td>{e(q['source'])}</td></tr>"
        for q in answers["questions"])
    return (f"<h2 id=seed-questions>Seed review questions</h2><p>The data questions of the seed review (section 10), "
            f"answered from this dataset: the profile of every row, plus a sample of {answers['sample_rows']} ok "
            f"injection rows where the profile holds no such statistic. Seed figures in brackets. Machine-readable: "
            f"<a href=seed_questions.json>seed_questions.json</a>.</p>"
            f"<table class=seed><tr><th></th><th>question</th><th>answer from this dataset</th><th>from</th></tr>{items}</table>")


def _snr_table(profile: dict) -> str:
    """Our arc_snr percentiles (the seed's definition) beside the seed's section 9 figures, and the
    footprint SNR beside them (another quantity, never compared with the seed's)."""
    from pipeline.gate.seed_questions import SEED_ARC_SNR

    e = html.escape
    keys = ("p5", "p25", "p50", "p75", "p95", "gt_1_pct", "gt_10_pct")

    def fmt(v):
        return "n/a" if v is None else f"{v:.3g}"

    rows = []
    for split, s in sorted(profile["splits"].items()):
        ours = [s.get(f"arc_snr_p{k[1:]}") if k.startswith("p") else
                (None if s.get(f"arc_snr_gt{k.split('_')[1]}_frac") is None else 100 * s[f"arc_snr_gt{k.split('_')[1]}_frac"])
                for k in keys]
        fp = [s.get(f"arc_snr_footprint_p{k[1:]}") if k.startswith("p") else
              (None if s.get(f"arc_snr_footprint_gt{k.split('_')[1]}_frac") is None
               else 100 * s[f"arc_snr_footprint_gt{k.split('_')[1]}_frac"]) for k in keys]
        seed = SEED_ARC_SNR.get(split, {})
        for label, vals in ((f"{split}: arc_snr (seed definition)", ours),
                            (f"{split}: seed section 9", [seed.get(k) for k in keys]),
                            (f"{split}: arc_snr_footprint (not the seed's quantity)", fp)):
            rows.append("<tr><td>" + e(label) + "</td>" + "".join(f"<td>{fmt(v)}</td>" for v in vals) + "</tr>")
    return ("<h2 id=arc-snr>arc_snr against the seed</h2><p>arc_snr is computed exactly as the seed defines it "
            "(section 6.1: whole stamp, every good pixel, r band); the footprint SNR is shown below it for "
            "detectability. Why ours differ from the seed's: see Q16 above and docs/physics.md (source brightness).</p>"
            "<table><tr><th></th><th>P5</th><th>P25</th><th>P50</th><th>P75</th><th>P95</th><th>&gt;1 %</th>"
            "<th>&gt;10 %</th></tr>" + "".join(rows) + "</table>")


def _binding_section(binding: dict | None) -> str:
    """What this verdict is about: the exact data, the suite, the run, and the drift reference."""
    if not binding:
        return ""
    e = html.escape
    drift = binding.get("drift") or {}
    drift_text = (f"checked against {drift.get('reference')}" if drift.get("checked")
                  else (drift.get("note") or "no reference"))
    rows = [("data (immutable)", binding.get("data_uri")), ("content checksum", binding.get("content_checksum")),
            ("suite", binding.get("suite")), ("run", binding.get("run")), ("drift", drift_text)]
    return ("<h2>What this verdict is about</h2><table>" + "".join(
        f"<tr><th>{e(k)}</th><td>{e(str(v))}</td></tr>" for k, v in rows if v is not None) + "</table>")


def write_report(out_dir, profile: dict, results: list[dict], failures: list[str], *, df=None, title="",
                 seed_answers: dict | None = None, binding: dict | None = None) -> str:
    """Write index.html (+ PNGs, seed_questions.json) into out_dir; returns the index path.
    `seed_answers` (seed_questions.answer_seed_questions) is computed here when not given;
    `binding` ({data_uri, content_checksum, suite, run, drift}) says what the verdict is about."""
    from pipeline.gate.seed_questions import answer_seed_questions

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if seed_answers is None:
        sample = seed_sample(df) if df is not None else None
        seed_answers = answer_seed_questions(profile, sample, results=results, failures=failures)
    (out / "seed_questions.json").write_text(json.dumps(seed_answers, indent=1, default=str))
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
img{{margin:4px}} table.seed td{{vertical-align:top;max-width:900px}}</style></head><body>
<h1>Gate {verdict}: {e(title)}</h1><p>Rows: {profile['all']['rows']} (all rows profiled); see also ../data_docs/index.html</p>
<h2>Failures</h2><ul>{fails}</ul>
{_binding_section(binding)}
{_seed_section(seed_answers)}
{_snr_table(profile)}
<h2>Checks</h2><table><tr><th>check</th><th>result</th><th>metric</th><th>observed</th><th>expected</th><th>why</th></tr>{rows}</table>
<h2>Distributions</h2>{imgs}
<h2>Example stamps (g,r,z composite, asinh stretch)</h2>{gal}
</body></html>"""
    (out / "index.html").write_text(page)
    return str(out / "index.html")
