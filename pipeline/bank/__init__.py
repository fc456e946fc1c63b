"""The COSMOS source bank: real HST galaxies read from GalSim catalogue files into one HDF5 file."""
