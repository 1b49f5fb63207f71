"""A small variable-rate mean-scale hyperprior (Balle 2018 / Minnen 2018 line).

Sized for CPU decode: N=64 feature channels (``Ns`` in the synthesis, N by
default), M=64 latent channels, four
stride-2 stages in the analysis/synthesis transforms (GDN / inverse GDN), two
in the hyper transforms (3x3 kernels).  One model covers every rate point:
each rate point r has a learned gain vector ``gain[r]`` (M values) that scales
the latent before quantisation and an inverse gain ``igain[r]`` applied before
synthesis ("asymmetric gained" variable rate, Cui et al. 2021).

Quantisation in training: additive uniform noise for the rate terms, rounding
around the predicted mean with a straight-through gradient for the synthesis
input (the "mixed" scheme used by current CompressAI training).

Training only: the runtime (precodec.learned) never imports torch.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# rate points: lambda for  loss = lambda * 255^2 * MSE + bpp   (CompressAI's MSE lambdas q1..q6)
LAMBDAS = (0.0018, 0.0035, 0.0067, 0.0130, 0.0250, 0.0483)

SCALE_MIN = 0.11
SCALE_MAX = 64.0
SCALE_LEVELS = 64


class GDN(nn.Module):
    """Generalised divisive normalisation (inverse=True: IGDN), non-negative reparametrisation."""

    def __init__(self, ch: int, inverse: bool = False, beta_min: float = 1e-6, gamma_init: float = 0.1):
        super().__init__()
        self.inverse = inverse
        self.pedestal = 2.0 ** -18
        self.beta_bound = (beta_min + self.pedestal) ** 0.5
        self.beta = nn.Parameter(torch.sqrt(torch.ones(ch) + self.pedestal))
        self.gamma = nn.Parameter(torch.sqrt(gamma_init * torch.eye(ch) + self.pedestal))

    def params(self):
        beta = torch.clamp(self.beta, min=self.beta_bound) ** 2 - self.pedestal
        gamma = torch.clamp(self.gamma, min=self.pedestal ** 0.5) ** 2 - self.pedestal
        return beta, gamma

    def forward(self, x):
        beta, gamma = self.params()
        c = x.shape[1]
        norm = F.conv2d(x * x, gamma.view(c, c, 1, 1), beta)
        norm = torch.sqrt(norm)
        return x * norm if self.inverse else x / norm


def conv(cin, cout, k=5, s=2):
    return nn.Conv2d(cin, cout, k, stride=s, padding=k // 2)


def deconv(cin, cout, k=5, s=2):
    return nn.ConvTranspose2d(cin, cout, k, stride=s, padding=k // 2, output_padding=s - 1)


class FactorizedPrior(nn.Module):
    """Balle's univariate non-parametric density per channel (for the hyper-latent z)."""

    def __init__(self, ch: int, filters=(3, 3, 3), init_scale: float = 10.0):
        super().__init__()
        filters = (1,) + tuple(filters) + (1,)
        scale = init_scale ** (1 / (len(filters) - 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(filters) - 1):
            init = math.log(math.expm1(1 / scale / filters[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((ch, filters[i + 1], filters[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(ch, filters[i + 1], 1) - 0.5))
            if i < len(filters) - 2:
                self.factors.append(nn.Parameter(torch.zeros(ch, filters[i + 1], 1)))

    def _logits_cumulative(self, x):  # x: (C, 1, n)
        for i in range(len(self.matrices)):
            x = torch.matmul(F.softplus(self.matrices[i]), x) + self.biases[i]
            if i < len(self.factors):
                x = x + torch.tanh(self.factors[i]) * torch.tanh(x)
        return x

    def likelihood(self, z):  # z: (B, C, H, W) -> same shape
        b, c, h, w = z.shape
        v = z.permute(1, 0, 2, 3).reshape(c, 1, -1)
        lower = self._logits_cumulative(v - 0.5)
        upper = self._logits_cumulative(v + 0.5)
        sign = -torch.sign(lower + upper).detach()
        lik = torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
        return lik.reshape(c, b, h, w).permute(1, 0, 2, 3)


def gaussian_likelihood(y, scale):
    scale = torch.clamp(scale, min=SCALE_MIN)
    v = torch.abs(y)
    up = 0.5 * torch.erfc(-(0.5 - v) / (scale * math.sqrt(2)))
    lo = 0.5 * torch.erfc(-(-0.5 - v) / (scale * math.sqrt(2)))
    return up - lo


class HyperCodec(nn.Module):
    def __init__(self, N: int = 64, M: int = 64, n_rates: int = len(LAMBDAS), Ns: int | None = None):
        super().__init__()
        Ns = N if Ns is None else Ns  # synthesis width (decode cost); N everywhere else
        self.N, self.M, self.n_rates, self.Ns = N, M, n_rates, Ns
        self.g_a = nn.Sequential(conv(3, N), GDN(N), conv(N, N), GDN(N), conv(N, N), GDN(N), conv(N, M))
        self.g_s = nn.Sequential(
            deconv(M, Ns), GDN(Ns, True), deconv(Ns, Ns), GDN(Ns, True), deconv(Ns, Ns), GDN(Ns, True), deconv(Ns, 3)
        )
        self.h_a = nn.Sequential(conv(M, N, 3, 1), nn.ReLU(), conv(N, N, 3, 2), nn.ReLU(), conv(N, N, 3, 2))
        self.h_s = nn.Sequential(
            deconv(N, N, 3, 2), nn.ReLU(), deconv(N, M * 3 // 2, 3, 2), nn.ReLU(), conv(M * 3 // 2, 2 * M, 1, 1)
        )
        self.prior = FactorizedPrior(N)
        # log gains, initialised log-spaced so higher rate points quantise more finely
        init = torch.linspace(math.log(0.5), math.log(4.0), n_rates)
        self.log_gain = nn.Parameter(init[:, None].repeat(1, M).clone())
        self.log_igain = nn.Parameter(-init[:, None].repeat(1, M).clone())

    def hyper_out(self, z_hat):
        out = self.h_s(z_hat)
        mean, log_scale = out.chunk(2, 1)
        return mean, log_scale

    def forward(self, x, r: torch.Tensor):
        """x: (B,3,H,W) in [0,1]; r: (B,) int rate indices."""
        g = torch.exp(self.log_gain[r])[:, :, None, None]
        ig = torch.exp(self.log_igain[r])[:, :, None, None]
        y = self.g_a(x) * g
        z = self.h_a(y)
        z_noisy = z + torch.empty_like(z).uniform_(-0.5, 0.5)
        z_hat = z + (torch.round(z) - z).detach()
        z_lik = self.prior.likelihood(z_noisy)
        mean, log_scale = self.hyper_out(z_hat)
        scale = torch.exp(log_scale)
        y_noisy = y + torch.empty_like(y).uniform_(-0.5, 0.5)
        y_lik = gaussian_likelihood(y_noisy - mean, scale)
        y_hat = (y - mean) + (torch.round(y - mean) - (y - mean)).detach() + mean
        x_hat = self.g_s(y_hat * ig)
        return x_hat, y_lik, z_lik


@torch.no_grad()
def ideal_code(model: "HyperCodec", x: torch.Tensor, r: int) -> tuple[float, torch.Tensor]:
    """Noise-free coding of ``x`` (1,3,H,W in [0,1]) at rate point ``r``: (ideal bits, decoded image in [0,1])."""
    y = model.g_a(x) * torch.exp(model.log_gain[r])[None, :, None, None]
    z = torch.round(model.h_a(y))
    zl = model.prior.likelihood(z)
    mean, ls = model.hyper_out(z)
    yq = torch.round(y - mean)
    yl = gaussian_likelihood(yq, torch.exp(ls))
    bits = -(torch.log2(yl.clamp_min(1e-9)).sum() + torch.log2(zl.clamp_min(1e-9)).sum()).item()
    return bits, model.g_s((yq + mean) * torch.exp(model.log_igain[r])[None, :, None, None]).clamp(0, 1)


# ----- pieces that are exported to ONNX -----


class Analysis(nn.Module):
    def __init__(self, m: HyperCodec):
        super().__init__()
        self.g_a = m.g_a

    def forward(self, x):
        return self.g_a(x)


class Synthesis(nn.Module):
    def __init__(self, m: HyperCodec):
        super().__init__()
        self.g_s = m.g_s

    def forward(self, y):
        return self.g_s(y)


class HyperAnalysis(nn.Module):
    def __init__(self, m: HyperCodec):
        super().__init__()
        self.h_a = m.h_a

    def forward(self, y):
        return self.h_a(y)
