"""Arrays handed to compiled Numba kernels.

Numba types an array by its dtype, rank, layout *and* writability: a read-only array (a
``np.broadcast_to`` view, ``np.load(..., mmap_mode="r")``, a buffer from another library)
is a different type from a writable one, so passing one compiles the whole kernel again
(tens of seconds for a generated training kernel, and a second entry in the cache). Every
user array that reaches a kernel goes through :func:`kernel_array` first.
"""

from __future__ import annotations

import numpy as np


def kernel_array(a, dtype=None) -> np.ndarray:
    """``a`` as a C-contiguous, writable array of ``dtype`` (``a``'s own when None), copied
    only where it is not one already.

    >>> ro = np.broadcast_to(np.ones(3), (2, 3))
    >>> ro.flags.writeable, kernel_array(ro).flags.writeable
    (False, True)
    >>> a = np.zeros((2, 3))
    >>> kernel_array(a) is a
    True
    """
    out = np.ascontiguousarray(a, dtype)
    return out if out.flags.writeable else out.copy()
