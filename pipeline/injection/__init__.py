"""The injection core: cut a stamp, render a lensed COSMOS arc, measure it, build the row.

Pure functions over numpy arrays (no Spark): `task.inject_task` is what the Spark step calls.
Modules: `cutout` (stamp from a brick), `psf` (the PSF object per task: PSFModel, MoffatPSF, PSF_MODELS;
Moffat kernels), `render` (the arc),
`metrics` (arc_snr and friends), `task` (one manifest task -> one contract row).
"""
