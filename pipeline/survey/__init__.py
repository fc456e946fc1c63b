"""DR10 Legacy Survey inputs: brick coadds, maskbits, the LRG table, and a synthetic mini-survey."""
