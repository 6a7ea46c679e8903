"""Network outputs -> the frame's best candidate, one module per model family (Numba kernels + NumPy references).

siamfc: upsampled response maps of a scale pyramid; box: cls scores + regressed l,t,r,b per grid point.
"""
