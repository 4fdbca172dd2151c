"""Step-1 gradients of two runs: for /G/opt_m and /D/opt_m of two checkpoints, the largest
difference relative to the largest element, and how many elements differ by more than
1e-3 of their own size."""
import sys

import h5py
import numpy as np

a, b = h5py.File(sys.argv[1], "r"), h5py.File(sys.argv[2], "r")
for key in ["/G/opt_m", "/D/opt_m"]:
    x, y = a[key][()], b[key][()]
    print(key, "%.3g" % (np.abs(x - y).max() / np.abs(x).max()), (np.abs(x - y) > 1e-3 * np.abs(x)).sum(), x.size)
