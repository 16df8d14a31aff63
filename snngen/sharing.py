"""Weight-sharing connection rules: convolution and pooling over neurons laid out as images.

A population of ``C * H * W`` neurons is read as ``C`` channels of ``H x W`` pixels, neuron
``(c * H + y) * W + x``. A sharing rule makes ordinary synapses (a table the kernels propagate
through like any other) and gives each synapse the index of the parameter it shares
(``CSR.shared``): a projection's synaptic variables then hold one value per shared parameter
(``n_shared`` of them: the kernel entries of a convolution), every synapse reads its
parameter's value, and gradients are summed over the synapses that share it.

>>> conv = Conv2D((1, 4, 4), out_channels=2, kernel=3, padding=1)
>>> conv.n_pre, conv.n_post, conv.n_shared
(16, 32, 18)
>>> i, j, k = conv.pairs()
>>> len(i), int(k.max()) + 1
(200, 18)
>>> Pool2D((2, 4, 4), size=2).n_post
8
"""

from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from .errors import ConnectivityError

#: Sizes, strides and paddings stay below the neuron index limit (int32 indices)
LIMIT = 2**31 - 1


def _positive(value, what: str, zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or \
            not (0 if zero else 1) <= value <= LIMIT:
        raise ConnectivityError(f"{what} must be an integer in [{0 if zero else 1}, {LIMIT}], "
                                f"got {value!r}")
    return int(value)


def _pair(value, what: str, zero: bool = False) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ConnectivityError(f"{what} must be one integer or a pair (rows, columns), "
                                    f"got {value!r}")
        return (_positive(value[0], what, zero), _positive(value[1], what, zero))
    v = _positive(value, what, zero)
    return (v, v)


def _shape(value, what: str) -> tuple[int, int, int]:
    if not isinstance(value, (tuple, list)) or len(value) != 3:
        raise ConnectivityError(f"{what}: in_shape must be (channels, height, width), got "
                                f"{value!r}")
    shape = tuple(_positive(v, f"{what}: in_shape", False) for v in value)
    if shape[0] * shape[1] * shape[2] > LIMIT:
        raise ConnectivityError(f"{what}: in_shape {shape} has more than {LIMIT} neurons")
    return shape


class _Sharing:
    """What the sharing rules have in common: sizes checked against the populations."""

    def check_sizes(self, n_pre: int, n_post: int) -> None:
        name = type(self).__name__
        if n_pre != self.n_pre:
            raise ConnectivityError(f"{name}: in_shape {self.in_shape} has {self.n_pre} "
                                    f"neurons but the presynaptic population has {n_pre}")
        if n_post != self.n_post:
            raise ConnectivityError(f"{name}: the output {self.out_shape} has {self.n_post} "
                                    f"neurons but the postsynaptic population has {n_post}; "
                                    f"make it net.population(..., {self.n_post})")

    @property
    def n_pre(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def n_post(self) -> int:
        return int(np.prod(self.out_shape))


@dataclass(frozen=True)
class Conv2D(_Sharing):
    """A 2-D convolution: output channel ``o`` at ``(oy, ox)`` receives from input channel
    ``c`` at ``(oy * stride - padding + ky, ox * stride - padding + kx)`` through the shared
    kernel entry ``((o * C + c) * KH + ky) * KW + kx``; taps outside the image are absent
    (zero padding). ``kernel``, ``stride`` and ``padding``: an integer or a pair."""

    in_shape: tuple
    out_channels: int
    kernel: object
    stride: object = 1
    padding: object = 0

    def __post_init__(self):
        object.__setattr__(self, "in_shape", _shape(self.in_shape, "Conv2D"))
        object.__setattr__(self, "out_channels", _positive(self.out_channels,
                                                           "Conv2D: out_channels"))
        object.__setattr__(self, "kernel", _pair(self.kernel, "Conv2D: kernel"))
        object.__setattr__(self, "stride", _pair(self.stride, "Conv2D: stride"))
        object.__setattr__(self, "padding", _pair(self.padding, "Conv2D: padding", True))
        _, h, w = self.in_shape
        for size, k, p, axis in ((h, self.kernel[0], self.padding[0], "height"),
                                 (w, self.kernel[1], self.padding[1], "width")):
            if size + 2 * p < k:
                raise ConnectivityError(f"Conv2D: the kernel ({k}) is larger than the padded "
                                        f"{axis} ({size} + 2 * {p})")

    @property
    def out_shape(self) -> tuple[int, int, int]:
        _, h, w = self.in_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel, self.stride, self.padding
        return (self.out_channels, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)

    @property
    def n_shared(self) -> int:
        return self.out_channels * self.in_shape[0] * self.kernel[0] * self.kernel[1]

    @staticmethod
    def _reach(size: int, k: int, stride: int, pad: int, out: int) -> tuple:
        """Per input position ``y`` of one axis: the first output that reads it and how many
        do (outputs ``o`` with ``0 <= y + pad - o * stride < k``: o in [ceil((y + pad - k +
        1) / stride), floor((y + pad) / stride)] within the output). Work and memory grow
        with the image, not with the kernel."""
        y = np.arange(size, dtype=np.int64)
        lo = np.maximum(0, -((k - 1 - y - pad) // stride))
        hi = np.minimum(out - 1, (y + pad) // stride)
        return y, lo, np.maximum(hi - lo + 1, 0)

    @classmethod
    def _axis(cls, size: int, k: int, stride: int, pad: int, out: int) -> tuple:
        """The valid (output, input, tap) triples of one axis."""
        y, lo, counts = cls._reach(size, k, stride, pad, out)
        ys = np.repeat(y, counts)
        o = np.repeat(lo, counts) + np.arange(int(counts.sum())) \
            - np.repeat(np.cumsum(counts) - counts, counts)
        return o, ys, ys + pad - o * stride

    def _axis_counts(self) -> tuple[int, int]:
        (_, h, w), (_, oh, ow) = self.in_shape, self.out_shape
        return tuple(int(self._reach(size, k, st, p, o)[2].sum()) for size, k, st, p, o in (
            (h, self.kernel[0], self.stride[0], self.padding[0], oh),
            (w, self.kernel[1], self.stride[1], self.padding[1], ow)))

    def count(self) -> int:
        """Number of synapses, without making them."""
        rows, cols = self._axis_counts()
        return rows * cols * self.out_channels * self.in_shape[0]

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(pre, post, shared index) of every synapse."""
        c_in, h, w = self.in_shape
        _, oh, ow = self.out_shape
        kh, kw = self.kernel
        oy, y, ky = self._axis(h, kh, self.stride[0], self.padding[0], oh)
        ox, x, kx = self._axis(w, kw, self.stride[1], self.padding[1], ow)
        o = np.arange(self.out_channels, dtype=np.int64)[:, None, None, None]
        c = np.arange(c_in, dtype=np.int64)[None, :, None, None]
        yy, oyy, kyy = (a[None, None, :, None] for a in (y, oy, ky))
        xx, oxx, kxx = (a[None, None, None, :] for a in (x, ox, kx))
        pre = (c * h + yy) * w + xx + 0 * o
        post = (o * oh + oyy) * ow + oxx + 0 * c
        shared = ((o * c_in + c) * kh + kyy) * kw + kxx
        pre, post, shared = np.broadcast_arrays(pre, post, shared)
        return pre.ravel().copy(), post.ravel().copy(), shared.ravel().copy()


@dataclass(frozen=True)
class Pool2D(_Sharing):
    """Sum pooling: output ``(c, oy, ox)`` receives from the ``size`` window of channel ``c``
    starting at ``(oy * stride, ox * stride)``; every synapse shares one parameter (give the
    weight as one number, e.g. ``w=0.25`` for the mean of 2 x 2 windows). ``stride``
    defaults to ``size``."""

    in_shape: tuple
    size: object
    stride: object = None

    def __post_init__(self):
        object.__setattr__(self, "in_shape", _shape(self.in_shape, "Pool2D"))
        object.__setattr__(self, "size", _pair(self.size, "Pool2D: size"))
        object.__setattr__(self, "stride", self.size if self.stride is None
                           else _pair(self.stride, "Pool2D: stride"))
        _, h, w = self.in_shape
        if self.size[0] > h or self.size[1] > w:
            raise ConnectivityError(f"Pool2D: the window {self.size} is larger than the "
                                    f"image ({h}, {w})")

    @property
    def out_shape(self) -> tuple[int, int, int]:
        c, h, w = self.in_shape
        return (c, (h - self.size[0]) // self.stride[0] + 1,
                (w - self.size[1]) // self.stride[1] + 1)

    @property
    def n_shared(self) -> int:
        return 1

    def count(self) -> int:
        return self.n_post * self.size[0] * self.size[1]

    def pairs(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c_in, h, w = self.in_shape
        _, oh, ow = self.out_shape
        c = np.arange(c_in)[:, None, None, None, None]
        oy = np.arange(oh)[None, :, None, None, None]
        ox = np.arange(ow)[None, None, :, None, None]
        dy = np.arange(self.size[0])[None, None, None, :, None]
        dx = np.arange(self.size[1])[None, None, None, None, :]
        pre = (c * h + oy * self.stride[0] + dy) * w + ox * self.stride[1] + dx
        post = (c * oh + oy) * ow + ox + 0 * (dy + dx)
        pre, post = np.broadcast_arrays(pre, post)
        return (pre.ravel().astype(np.int64), post.ravel().astype(np.int64),
                np.zeros(pre.size, np.int64))


SHARING_RULES = (Conv2D, Pool2D)
