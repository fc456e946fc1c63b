"""The bank's process pool changes only the wall time: same galaxies, same order."""

from functools import partial

import numpy as np

from pipeline.bank._pool import MIN_ITEMS_FOR_POOL, ordered_map
from pipeline.bank.synth import _synth_galaxy_at


def test_pool_gives_the_serial_galaxies_in_order():
    make = partial(_synth_galaxy_at, seed=7, pixel_scale_arcsec=0.03)
    n = MIN_ITEMS_FOR_POOL + 2
    pooled = ordered_map(make, range(n), workers=2)
    serial = ordered_map(make, range(n), workers=1)
    assert len(pooled) == n
    for a, b in zip(pooled, serial):
        assert a["image"].tobytes() == b["image"].tobytes() and a["mag"] == b["mag"]
    # galaxy i does not depend on which others are made
    assert np.array_equal(pooled[5]["image"], make(5)["image"])
