"""The denoiser network (torch; training only).

A small FFDNet-style residual U-Net:

* the RGB input is pixel-unshuffled by 2 (four half-resolution phases, 12
  channels) and concatenated with a per-channel noise-level map (3 channels,
  the noise std of R, G, B in 8-bit units divided by ``SIGMA_SCALE``);
* ``head``: conv3x3 layers of ``c1`` channels at half resolution;
* ``down``: a 2x2 stride-2 conv to ``c2`` channels at quarter resolution, where
  ``n`` conv3x3 layers (with one residual skip) give the net a wide receptive
  field (about 40 full-resolution pixels) at a small cost per pixel;
* ``up``: a 1x1 conv + pixel shuffle back to half resolution, added to the head
  features (U-Net skip); ``tail``: conv3x3 layers predicting the noise of the 12
  phase channels;
* output = input - pixel_shuffle(noise).

Working at half and quarter resolution is what keeps the cost near 9k
multiply-adds per full-resolution pixel.
"""

from __future__ import annotations

import torch
from torch import nn

SIGMA_SCALE = 25.0  # sigma map value = sigma[8-bit] / SIGMA_SCALE


def _conv_relu(cin: int, cout: int, k: int = 3, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=(k // 2 if stride == 1 else 0)), nn.ReLU(inplace=True)]


class Denoiser(nn.Module):
    def __init__(self, c1: int = 24, c2: int = 48, n: int = 4, nh: int = 1):
        super().__init__()
        self.un = nn.PixelUnshuffle(2)
        self.sh = nn.PixelShuffle(2)
        head: list[nn.Module] = _conv_relu(15, c1)
        for _ in range(nh):
            head += _conv_relu(c1, c1)
        self.head = nn.Sequential(*head)
        self.down = nn.Sequential(*_conv_relu(c1, c2, 2, 2))
        body: list[nn.Module] = []
        for _ in range(n):
            body += _conv_relu(c2, c2)
        self.body = nn.Sequential(*body)
        self.up = nn.Sequential(nn.Conv2d(c2, 4 * c1, 1), nn.PixelShuffle(2))
        self.tail = nn.Sequential(*_conv_relu(c1, c1), nn.Conv2d(c1, 12, 3, padding=1))
        # start close to the identity (predicted noise ~0), as residual denoisers train best
        nn.init.normal_(self.tail[-1].weight, std=1e-3)
        nn.init.zeros_(self.tail[-1].bias)

    def forward(self, x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        """x: (N, 3, H, W) in [0, 1], H and W multiples of 4; sigma: (N, 3) in 8-bit units."""
        z = self.un(x)
        n, _, h, w = z.shape
        smap = (sigma / SIGMA_SCALE).view(n, 3, 1, 1).expand(n, 3, h, w)
        a = self.head(torch.cat([z, smap], 1))
        d = self.down(a)
        b = self.up(d + self.body(d))
        return x - self.sh(self.tail(a + b))


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def macs_per_pixel(m: nn.Module, size: int = 128) -> float:
    """Multiply-adds per full-resolution pixel (convolutions only)."""
    tot = 0

    def hook(mod, _i, o):
        nonlocal tot
        tot += o.numel() * mod.in_channels // mod.groups * mod.kernel_size[0] * mod.kernel_size[1]

    hs = [mm.register_forward_hook(hook) for mm in m.modules() if isinstance(mm, nn.Conv2d)]
    with torch.no_grad():
        m(torch.rand(1, 3, size, size), torch.full((1, 3), 10.0))
    for h in hs:
        h.remove()
    return tot / size / size


#: channels of the exported graph's input and output (the 12 phases + 3 noise-map channels, padded)
CORE_CHANNELS = 16


class PhaseCore(nn.Module):
    """The exported graph: :class:`Denoiser` without the pixel (un)shuffles at its two ends.

    Input ``z``: (N, 16, H/2, W/2) = the 12 half-resolution phases of the RGB input (PixelUnshuffle(2)
    order: channel ``4c + 2i + j`` is colour ``c`` at row phase ``i``, column phase ``j``), the 3-channel
    noise map (sigma / ``SIGMA_SCALE``) and one zero channel.  Output: (N, 16, H/2, W/2), the noise of the
    12 phases, then 4 zero channels; the caller computes ``x - PixelShuffle(noise[:, :12])``.

    Same weights and the same arithmetic as the wrapped :class:`Denoiser` (the extra channels carry zero
    weights).  Why: onnxruntime runs int8 convolutions channels-last, and the pixel shuffles at the ends
    forced layout transposes that took about a third of the int8 run time; 15 input and 12 output channels
    also hit slow paths of its int8 convolution (16 are not).  The caller does the shuffles in numpy while it
    converts between uint8 pixels and floats, which it does anyway.
    """

    def __init__(self, m: Denoiser):
        super().__init__()
        head = list(m.head)
        c0 = head[0]
        c = nn.Conv2d(CORE_CHANNELS, c0.out_channels, 3, padding=1)
        tail = list(m.tail)
        t = tail[-1]
        o = nn.Conv2d(t.in_channels, CORE_CHANNELS, 3, padding=1)
        with torch.no_grad():
            c.weight.zero_()
            c.weight[:, :c0.in_channels] = c0.weight
            c.bias.copy_(c0.bias)
            o.weight.zero_()
            o.bias.zero_()
            o.weight[:t.out_channels] = t.weight
            o.bias[:t.out_channels] = t.bias
        head[0], tail[-1] = c, o
        self.head, self.down, self.body, self.up, self.tail = nn.Sequential(*head), m.down, m.body, m.up, \
            nn.Sequential(*tail)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        a = self.head(z)
        d = self.down(a)
        return self.tail(a + self.up(d + self.body(d)))


def phase_input(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """:class:`PhaseCore`'s input for ``x`` (N, 3, H, W) in [0, 1] and ``sigma`` (N, 3) in 8-bit units."""
    z = nn.functional.pixel_unshuffle(x, 2)
    n, _, h, w = z.shape
    smap = (sigma / SIGMA_SCALE).view(n, 3, 1, 1).expand(n, 3, h, w)
    return torch.cat([z, smap, torch.zeros(n, CORE_CHANNELS - 15, h, w)], 1)
