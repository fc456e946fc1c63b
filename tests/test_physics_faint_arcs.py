"""Issue 16: stored faint arcs within 1% L1 of the truth for every injection, the faintest demo arcs
included. These three are the worst of the 25 faintest demo arcs by r flux (make demo, 2026-12-01,
before the bank was denoised: 1.40%, 1.13% and 1.45% L1 from lenstronomy's supersampling-8 render);
their sources are the faintest real galaxies of the bank (AEGIS F814W 24.8-24.9, noisy, compact).

Truth: a fresh lenstronomy ImageModel at supersampling 32 with the PSF convolved on the sub-grid
(`lenstronomy_image_model_render`). Supersampling 8 is NOT converged for these sources: it is up to
1.5% L1 from supersampling 32 on them (16 is within 0.01-0.43%), so it cannot judge a 1% bound.
Measured (stored = the render rounded by pipeline.pixels.quantize_arc, as every row is): 0.69%,
0.84%, 0.66% with the denoised bank; 1.16%, 0.77%, 0.89% with the noisy clean stamps (planted:
`build_bank(..., denoise=False)` fails the first row).
"""

from pathlib import Path

import numpy as np
import pytest

from pipeline.bank.build import build_bank
from pipeline.bank.store import open_bank
from pipeline.injection.psf import MoffatPSF
from pipeline.injection.reference import l1_relative, lenstronomy_image_model_render
from pipeline.injection.render import LensParams, SourcePlacement, render_arc
from pipeline.pixels import quantize_arc

AEGIS = Path(__file__).resolve().parents[1] / "data" / "hst_galaxies" / "aegis_f814w" / "AEGIS_F814w_catalog.fits"

#: (AEGIS catalogue row, lens (theta_E, e1, e2, gamma1, gamma2, x, y), source (x, y, phi), psf_fwhm_r):
#: the demo rows' own parameters
WORST_DEMO_ROWS = [
    (0, (1.7945919523221403, 0.027890884012461484, 0.024168268408042294, -0.07419028745335327, 0.0034452147510652393,
         0.062042533035221906, 0.07136020117268388), (0.013182332572522595, -1.264450502428622, 4.4450836421940485), 1.5),
    (0, (1.363925277046222, -0.001794632813836511, 0.010754548957175456, -0.09099780477929163, -0.00396346427108467,
         0.012888085321265782, 0.0284516554994314), (-0.0025219108666852527, 1.177428508631104, 0.4712121038752982), 1.14),
    (3, (2.0471453862726383, 0.0545595364492024, -0.006063171471647233, 0.025823599572927198, -0.022625530565806296,
         0.08852331208021402, 0.16640518147096428), (1.7506570215257256, -0.1503588024996906, 1.8622719158014285), 1.28),
]


@pytest.fixture(scope="module")
def aegis_bank(tmp_path_factory):
    path = tmp_path_factory.mktemp("bank") / "aegis.h5"
    report = build_bank([AEGIS], path)
    assert [k.origin.split(" row ")[1].split()[0] for k in report.kept] == ["0", "1", "2", "3", "4"]
    return open_bank(path)


@pytest.mark.parametrize("row", range(len(WORST_DEMO_ROWS)))
def test_faintest_demo_arcs_stored_within_1pct_l1_of_the_converged_truth(aegis_bank, row):
    index, lens_args, src_args, fwhm = WORST_DEMO_ROWS[row]
    lens, src = LensParams(*lens_args), SourcePlacement(*src_args)
    stamp = aegis_bank.image(index)
    # unit flux: L1 is relative, and the stored grid is relative to the arc's peak
    ours = render_arc(stamp, aegis_bank.pixel_scale_arcsec, lens, src, [1.0], MoffatPSF({"r": fwhm}, 3.5)).arcs[0]
    stored = np.asarray(quantize_arc(ours), dtype=float)
    truth = lenstronomy_image_model_render(stamp, lens, src, fwhm, 3.5, supersampling=32)
    l1 = l1_relative(stored, truth)
    print(f"AEGIS row {index}: stored arc {l1:.3%} L1 from the supersampling-32 truth")
    assert l1 < 0.01
