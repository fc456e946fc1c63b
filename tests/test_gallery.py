"""The gallery's "arc only" panel has its own stretch, so a faint arc is visible there."""

from __future__ import annotations

import numpy as np

from pipeline.gallery import arc_panel, grz_composite, render_gallery

N = 64


def _ring(theta_pix=8.0, width=1.5, flux=1.0):
    yy, xx = np.mgrid[0:N, 0:N] - 32.0
    r = np.hypot(xx, yy)
    ring = np.exp(-0.5 * ((r - theta_pix) / width) ** 2) * (1 + np.cos(np.arctan2(yy, xx))) ** 2
    return flux * ring / ring.sum()


def _lrg(flux=300.0):
    yy, xx = np.mgrid[0:N, 0:N] - 32.0
    p = np.exp(-np.hypot(xx, yy) / 2.0)
    return flux * p / p.sum()


def _faint_stamp():
    """A bright LRG (300 nmgy) and an arc 1,000 times fainter in total flux (0.3 nmgy)."""
    colour = np.array([0.4, 1.0, 1.6])[:, None, None]
    arc = colour * _ring(flux=0.3)[None]
    image = colour * _lrg()[None] + arc
    return image, arc


def test_faint_arc_invisible_on_the_composite_stretch_visible_on_its_own():
    image, arc = _faint_stamp()
    top_image = float(np.percentile(image.max(axis=0), 99.7))
    on_composite = grz_composite(arc, max_nmgy=top_image)
    rgb, top = arc_panel(arc)
    # the old panel: the arc's brightest pixel stays near black on the LRG's stretch
    assert on_composite.max() < 0.15
    # its own stretch: the arc's bright part reaches the top of the scale
    assert rgb.max() > 0.9 and 0 < top < top_image / 20
    # and its shape survives (the ring's bright side vs the opposite, faint side)
    assert rgb[32, 32 + 8].max() > 5 * rgb[32, 32 - 8].max()


def test_arc_panel_of_an_empty_arc_is_finite_black():
    rgb, top = arc_panel(np.zeros((3, N, N)))
    assert np.isfinite(rgb).all() and rgb.max() == 0 and top > 0


def test_gallery_png_with_a_faint_arc(tmp_path):
    image, arc = _faint_stamp()
    row = {"cutout_ok": True, "is_control": False, "image": image.ravel(), "arc": arc.ravel(),
           "theta_e_arcsec": 2.1, "src_mag_r": 24.0, "arc_snr": 1.2, "magnification": 4.0, "psf_fwhm_r": 1.3}
    out = render_gallery([row], str(tmp_path / "g.png"), ncols=1)
    data = (tmp_path / "g.png").read_bytes()
    assert out.endswith("g.png") and data[:8] == b"\x89PNG\r\n\x1a\n"
