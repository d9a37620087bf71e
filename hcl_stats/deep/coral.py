"""COrAL (Cissee, Younis, Ahmadi 2026; built on CoMM), re-implemented for vector data on CPU
(reference: github.com/Caro-Ci/COrAL)."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .._validation import Interval, Options
from ._train import DeepContrastive, augment, mlp, nt_xent

__all__ = ["COrAL", "FeatureTokenizer"]


class FeatureTokenizer(nn.Module):
    """FT-Transformer style tokenizer for a vector: feature j -> x_j w_j + b_j (one d-dim token per
    feature), plus a learned modality embedding."""

    def __init__(self, n_features, d):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_features, d) / d ** 0.5)
        self.bias = nn.Parameter(torch.zeros(n_features, d))
        self.modality = nn.Parameter(torch.zeros(1, 1, d))

    def forward(self, x):
        return x[:, :, None] * self.weight[None] + self.bias[None] + self.modality


class _Block(nn.Module):
    """One pre-LayerNorm transformer block (self-attention + MLP)."""

    def __init__(self, d, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ff = nn.Sequential(nn.Linear(d, 2 * d), nn.GELU(), nn.Linear(2 * d, d))

    def forward(self, t, pad_mask=None):
        h = self.ln1(t)
        t = t + self.attn(h, h, h, key_padding_mask=pad_mask, need_weights=False)[0]
        return t + self.ff(self.ln2(t))


class _AttnPool(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.score = nn.Linear(d, 1)

    def forward(self, t):
        w = torch.softmax(self.score(t).squeeze(-1), dim=1)
        return (w[:, :, None] * t).sum(1)


class _COrALNet(nn.Module):
    def __init__(self, n_features, d, heads, head_hidden, head_out):
        super().__init__()
        M = len(n_features)
        self.tok_s = nn.ModuleList([FeatureTokenizer(p, d) for p in n_features])
        self.enc_s = nn.ModuleList([nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(), nn.Linear(d, d)) for _ in range(M)])
        self.cls = nn.Parameter(torch.zeros(1, 1, d))
        self.fusion = _Block(d, heads)
        self.ln_out = nn.LayerNorm(d)
        du = max(1, d // 2)
        self.tok_u = nn.ModuleList([FeatureTokenizer(p, d) for p in n_features])
        self.enc_u = nn.ModuleList([nn.Sequential(nn.LayerNorm(d), nn.Linear(d, d), nn.GELU(), nn.Linear(d, du)) for _ in range(M)])
        self.pool_u = nn.ModuleList([_AttnPool(du) for _ in range(M)])
        self.g = mlp(d, head_hidden, head_out, batchnorm=True)
        self.h = nn.ModuleList([mlp(du, head_hidden, head_out, batchnorm=True) for _ in range(M)])

    def shared(self, xs, keep=None):
        """Fusion path: CLS + tokens of every modality, one attention block; ``keep`` is a list of
        (B, p_m) boolean masks of the tokens kept (None: all)."""
        toks = [self.enc_s[m](self.tok_s[m](x)) for m, x in enumerate(xs)]
        B = xs[0].shape[0]
        t = torch.cat([self.cls.expand(B, 1, -1)] + toks, 1)
        pad = None
        if keep is not None:
            pad = ~torch.cat([torch.ones(B, 1, dtype=torch.bool)] + list(keep), 1)
        return self.ln_out(self.fusion(t, pad)[:, 0])

    def unique(self, x, m):
        return self.pool_u[m](self.enc_u[m](self.tok_u[m](x)))


class COrAL(DeepContrastive):
    """COrAL: shared (fusion transformer) and unique paths per modality, complementary asymmetric
    token masking, NT-Xent and orthogonality penalties.

    Shared path: a feature tokenizer per modality (one token per feature), a token MLP, then the
    tokens of all modalities and a CLS token through one pre-LN self-attention block; s = the CLS
    output (d). Unique path of modality m: its own tokenizer, token MLP to d/2 and attention
    pooling; u_m (d/2). Heads: g on s, h_m on u_m (``head_hidden`` with BatchNorm, ReLU).

    Two views per batch, each with its own vector augmentation (feature masking ``aug_mask``,
    noise ``aug_noise``); in the fusion path view ' masks the tokens of modality a and view ''
    those of the other modalities (each token dropped with probability r): for two modalities
    a = 1 always, for more a is drawn per batch. Loss: NT-Xent(tau) on g(s'), g(s''); NT-Xent on
    h_m(u_m'), h_m(u_m'') for each m; plus ``lam`` times the per-sample cosine penalties between
    every pair of {h_1(u_1), ..., h_M(u_M), g(s)} within each view (6 terms for M = 2):
    ``orth="squared"`` cos^2 (later code) or ``"hinge"`` max(0, cos) (early code).
    Masking ratio r: ``mask="static"`` (``mask_ratio``) or ``"schedule"`` (0.05, 0.35, 0.55, 0.75
    from 0, 25, 50, 75 % of ``epochs``). Representation: pre-head [s, u_1, ..., u_M] on the
    unmasked, unaugmented input, shape (n, d + M d/2).

    Parameters
    ----------
    d : int, default 32; heads : int, default 4 (8 in the paper with d = 512);
    head_hidden : tuple, default (128, 128); head_out : int, default 64 (paper: 512, 512, 256)
    tau : float, default 0.1; lam : float, default 1.0; orth : {"squared", "hinge"}
    mask : {"static", "schedule"}; mask_ratio : float, default 0.75
    epochs, batch_size (default 64), lr (default 1e-3; paper 1e-4), weight_decay (default 1e-3),
    patience, val_fraction, random_state, verbose : see :class:`~hcl_stats.deep._train.DeepContrastive`.
    """

    _extra_constraints = {"d": [Interval(int, 2, None)], "heads": [Interval(int, 1, None)],
                          "head_out": [Interval(int, 1, None)], "tau": [Interval(float, 0, None, closed="neither")],
                          "lam": [Interval(float, 0, None)], "orth": [Options("squared", "hinge")],
                          "mask": [Options("static", "schedule")], "mask_ratio": [Interval(float, 0, 1, closed="left")],
                          "aug_mask": [Interval(float, 0, 1, closed="left")], "aug_noise": [Interval(float, 0, None)]}

    def __init__(self, *, d=32, heads=4, head_hidden=(128, 128), head_out=64, tau=0.1, lam=1.0, orth="squared",
                 mask="static", mask_ratio=0.75, aug_mask=0.3, aug_noise=0.2, epochs=50, batch_size=64, lr=1e-3,
                 weight_decay=1e-3, patience=5, val_fraction=0.2, random_state=0, verbose=False):
        self.d = d
        self.heads = heads
        self.head_hidden = head_hidden
        self.head_out = head_out
        self.tau = tau
        self.lam = lam
        self.orth = orth
        self.mask = mask
        self.mask_ratio = mask_ratio
        self.aug_mask = aug_mask
        self.aug_noise = aug_noise
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.val_fraction = val_fraction
        self.random_state = random_state
        self.verbose = verbose

    def _build(self, n_features, n_classes):
        if self.d % self.heads:
            raise ValueError(f"The 'd' parameter of COrAL must be divisible by 'heads' ({self.heads}). Got {self.d} instead.")
        return _COrALNet(n_features, self.d, self.heads, list(self.head_hidden), self.head_out)

    def ratio(self, epoch):
        """Masking ratio r at ``epoch``."""
        if self.mask == "static":
            return self.mask_ratio
        frac = epoch / max(1, self.epochs)
        return 0.75 if frac >= 0.75 else 0.55 if frac >= 0.5 else 0.35 if frac >= 0.25 else 0.05

    def _penalty(self, zs):
        pen = 0.0
        for i in range(len(zs)):
            for j in range(i + 1, len(zs)):
                c = F.cosine_similarity(zs[i], zs[j], dim=1)
                pen = pen + (c ** 2 if self.orth == "squared" else F.relu(c)).mean()
        return pen

    def _loss(self, net, xs, y, gen, epoch):
        M = len(xs)
        r = self.ratio(epoch)
        if M == 2:
            a = 0
        else:
            a = int(torch.randint(0, M, (1,), generator=gen))
        views = []
        for v in range(2):
            xv = [augment(x, gen, self.aug_mask, self.aug_noise) for x in xs]
            keep = []
            for m, x in enumerate(xs):
                masked = (m == a) if v == 0 else (m != a)
                if masked and r > 0:
                    keep.append(torch.rand(x.shape, generator=gen) >= r)
                else:
                    keep.append(torch.ones(x.shape, dtype=torch.bool))
            s = net.shared(xv, keep)
            us = [net.unique(xv[m], m) for m in range(M)]
            views.append((net.g(s), [net.h[m](us[m]) for m in range(M)]))
        (g1, h1), (g2, h2) = views
        loss = nt_xent(g1, g2, self.tau) + sum(nt_xent(h1[m], h2[m], self.tau) for m in range(M))
        return loss + self.lam * (self._penalty(h1 + [g1]) + self._penalty(h2 + [g2]))

    def _embed(self, net, xs):
        return torch.cat([net.shared(xs)] + [net.unique(x, m) for m, x in enumerate(xs)], 1)
