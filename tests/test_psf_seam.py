"""The PSF seam (issue 18): one PSF object per task, used by the render, the row's PSF columns and
the lenstronomy truth; a second PSF model is one class plus its psf_model value.

Independent truths: the pre-seam call (a FWHM list + moffat_beta) must give bit-identical arcs;
a model that only serves the Moffat's kernels from arrays (as a pixelized PSF read from a file
would) must render exactly what the Moffat renders; lenstronomy's render through the object
equals the Moffat shorthand the physics tests use.
"""

import numpy as np
import pytest

from pipeline.config import RunConfig
from pipeline.errors import InputError
from pipeline.injection import psf as psf_mod
from pipeline.injection.psf import PSF_MODELS, MoffatPSF, PSFModel, psf_for_task
from pipeline.injection.render import LensParams, SourcePlacement, render_arc
from pipeline.injection.task import RunContext, inject_task
from pipeline.units import COSMOS_PIXSCALE_ARCSEC, DR10_PIXSCALE_ARCSEC
from tests.injection_fixtures import PSF_FWHM, make_bank, make_brick, make_task

S = DR10_PIXSCALE_ARCSEC
LENS = LensParams(1.3, 0.08, -0.05, 0.02, -0.01, 0.02, -0.03)
SRC_POS = SourcePlacement(0.15, 0.1, 0.7)


@pytest.fixture(scope="module")
def bank():
    return make_bank(n=3)


class ArrayPSF(PSFModel):
    """A pixelized PSF: kernels given as arrays per (band, supersample), as a PSF read from a file
    would be. Here the arrays are the Moffat's, so its renders must equal the Moffat's."""

    name = "array"

    def __init__(self, kernels: dict, fwhm: dict):
        self._kernels, self._fwhm = kernels, fwhm

    @classmethod
    def from_conditions(cls, fwhm_arcsec, config):
        moffat = MoffatPSF(fwhm_arcsec, config.moffat_beta)
        kernels = {(b, k): np.array(moffat.kernel(b, S, k)) for b in moffat.bands for k in (1, 2)}
        return cls(kernels, {b: moffat.fwhm_arcsec(b) for b in moffat.bands})

    @property
    def bands(self):
        return tuple(self._fwhm)

    def fwhm_arcsec(self, band):
        return self._fwhm[band]

    def kernel_radius_pix(self, band, pixel_scale_arcsec):
        return self._kernels[(band, 1)].shape[0] // 2

    def kernel(self, band, pixel_scale_arcsec, supersample=1):
        return self._kernels[(band, int(supersample))]

    def kernel_rfft(self, band, fft_size, pixel_scale_arcsec, supersample=1):
        return psf_mod._wrapped_rfft(self.kernel(band, pixel_scale_arcsec, supersample), fft_size)

    def to_lenstronomy(self, band, pixel_scale_arcsec, supersampling, subgrid_convolution=True):
        """Its own pixel (or sub-grid) kernel as lenstronomy's PIXEL PSF."""
        size = self._kernels[(band, 1)].shape[0]
        if subgrid_convolution:
            ss = int(supersampling)
            if (band, ss) not in self._kernels:
                raise KeyError(f"no {ss}x sub-grid kernel for band {band!r}")
            return ({"psf_type": "PIXEL", "kernel_point_source": np.array(self._kernels[(band, ss)]),
                     "point_source_supersampling_factor": ss}, size)
        return {"psf_type": "PIXEL", "kernel_point_source": np.array(self._kernels[(band, 1)])}, size

    def row_columns(self):
        return {**{f"psf_fwhm_{b}": f for b, f in self._fwhm.items()}, "moffat_beta": None}


def test_registry_and_config_follow_each_other(monkeypatch):
    assert PSF_MODELS == {"moffat": MoffatPSF}
    with pytest.raises(InputError, match="psf_model"):
        RunConfig(psf_model="array")
    monkeypatch.setitem(PSF_MODELS, "array", ArrayPSF)
    assert RunConfig(psf_model="array").psf_model == "array"  # one class + its config value


def test_psf_for_task_builds_the_configs_model_from_the_conditions():
    psf = psf_for_task(RunConfig(moffat_beta=4.5), {"g": 1.4567, "r": 1.2, "z": 0.98})
    assert isinstance(psf, MoffatPSF) and psf.bands == ("g", "r", "z") and psf.beta == 4.5
    assert psf.fwhm_arcsec("g") == 1.46  # rounded to FWHM_STEP_ARCSEC, as the row records it
    assert psf.row_columns() == {"psf_fwhm_g": 1.46, "psf_fwhm_r": 1.2, "psf_fwhm_z": 0.98, "moffat_beta": 4.5}
    # the kernels are the cached module kernels: shared, read-only
    assert psf.kernel("r", S, 2) is psf_mod.cached_subgrid_kernel(1.2, 4.5, S, 2)
    assert psf.kernel("r", S) is psf_mod.cached_kernel(1.2, 4.5, S)
    assert psf.kernel_rfft("z", 96, S, 2) is psf_mod.subgrid_kernel_rfft(0.98, 4.5, S, 2, 96)
    assert not psf.kernel("r", S).flags.writeable
    with pytest.raises(KeyError):
        psf.fwhm_arcsec("i")


def test_object_and_pre_seam_arguments_render_bit_identical_arcs(bank):
    fwhm = [1.456, 1.2, 0.97]
    old = render_arc(bank.images[1], COSMOS_PIXSCALE_ARCSEC, LENS, SRC_POS, [2.0, 3.0, 5.0], fwhm, 3.5)
    new = render_arc(bank.images[1], COSMOS_PIXSCALE_ARCSEC, LENS, SRC_POS, [2.0, 3.0, 5.0],
                     MoffatPSF(dict(zip("grz", fwhm)), 3.5))
    np.testing.assert_array_equal(old.arcs, new.arcs)
    assert old.psf_fwhm_arcsec == new.psf_fwhm_arcsec == (1.46, 1.2, 0.97)
    with pytest.raises(TypeError):
        render_arc(bank.images[1], COSMOS_PIXSCALE_ARCSEC, LENS, SRC_POS, [1.0], MoffatPSF({"r": 1.2}, 3.5), 3.5)


def test_a_second_psf_model_is_one_class_and_its_config_value(monkeypatch, bank):
    """inject_task with psf_model "array" (registered, nothing else changed) renders the Moffat's
    arcs exactly when given the Moffat's kernels, and writes the model's own row columns."""
    monkeypatch.setitem(PSF_MODELS, "array", ArrayPSF)
    brick = make_brick()
    task = make_task(brick, 0)
    moffat = inject_task(task, brick, bank, RunContext("r", "v", RunConfig()))
    array = inject_task(task, brick, bank, RunContext("r", "v", RunConfig(psf_model="array")))
    assert moffat["cutout_ok"] and array["cutout_ok"], array["cutout_error"]
    np.testing.assert_array_equal(moffat["arc"], array["arc"])
    assert array["moffat_beta"] is None and moffat["moffat_beta"] == 3.5
    for b in "grz":
        assert array[f"psf_fwhm_{b}"] == moffat[f"psf_fwhm_{b}"] == PSF_FWHM[b]


def test_lenstronomy_truth_takes_the_object_and_builds_fresh_models(bank):
    from pipeline.injection.reference import lenstronomy_image_model_render, lenstronomy_psf_render

    psf = MoffatPSF({"g": 1.45, "r": 1.25}, 3.5)
    via_object = lenstronomy_psf_render(bank.images[0], LENS, SRC_POS, psf, "r", supersampling=4)
    shorthand = lenstronomy_image_model_render(bank.images[0], LENS, SRC_POS, 1.25, 3.5, supersampling=4)
    np.testing.assert_array_equal(via_object, shorthand)
    kwargs, size = psf.to_lenstronomy("r", S, 4)
    again, _ = psf.to_lenstronomy("r", S, 4)
    assert kwargs["kernel_point_source"] is not again["kernel_point_source"]  # a fresh array each time
    assert size == 2 * psf.kernel_radius_pix("r", S) + 1 and kwargs["point_source_supersampling_factor"] == 4
    # a different source through the same PSF object renders itself (no cached interpolator)
    other = lenstronomy_psf_render(bank.images[1], LENS, SRC_POS, psf, "r", supersampling=4)
    assert np.abs(other - via_object).sum() > 0.05 * np.abs(via_object).sum()


def test_a_pixelized_psf_hands_lenstronomy_its_own_kernels():
    """The truth render's seam: the new class gives lenstronomy exactly its stored kernels, and
    lenstronomy accepts them."""
    from lenstronomy.Data.psf import PSF

    array_psf = ArrayPSF.from_conditions({"g": 1.3, "r": 1.1}, RunConfig())
    for subgrid, ss in ((False, 1), (True, 2)):
        kwargs, size = array_psf.to_lenstronomy("r", S, ss, subgrid_convolution=subgrid)
        np.testing.assert_array_equal(kwargs["kernel_point_source"], array_psf.kernel("r", S, ss))
        assert size == array_psf.kernel("r", S).shape[0]
        PSF(**kwargs)
    with pytest.raises(KeyError, match="no 4x sub-grid kernel"):
        array_psf.to_lenstronomy("r", S, 4)
