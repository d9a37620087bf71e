"""Reference points: Cross (CLIP-style InfoNCE between modalities), Cross+Self (plus SimCLR
within each modality on augmented views) and SupCon (supervised contrastive learning with the
two modalities as the two views, FactorCL's supervised baseline)."""
from __future__ import annotations

import itertools

import torch
from torch import nn

from ..._validation import Interval
from .._deprecation import resolve_renamed
from .training import DeepContrastive, augment, clip_loss, mlp, nt_xent, supcon_loss

__all__ = ["Cross", "CrossSelf", "SupCon"]


def _renamed_dim(owner, deprecated, n_components):
    # stacklevel 4: resolve_renamed -> this helper -> __init__ -> the user's call
    return resolve_renamed(owner, deprecated, {"dim": "n_components"}, {"n_components": n_components},
                           {"n_components": 32}, stacklevel=4)["n_components"]


class _CrossNet(nn.Module):
    def __init__(self, n_features, hidden, n_components, proj_dim):
        super().__init__()
        self.enc = nn.ModuleList([mlp(p, hidden, n_components) for p in n_features])
        self.proj = nn.ModuleList([mlp(n_components, [n_components], proj_dim) for _ in n_features])


class Cross(DeepContrastive):
    """CLIP-style cross-modal contrastive learning: one MLP encoder and projection head per
    modality, symmetric InfoNCE (temperature ``tau``) between the projections of every pair of
    modalities of the same sample. Representation: the concatenated encoder outputs
    [f_1(x_1), ..., f_M(x_M)] (pre-projection), shape (n_samples, M * n_components).

    Parameters
    ----------
    hidden : tuple of int, default (128, 128)
    n_components : int, default 32
        Encoder output size per modality (the representation has ``M * n_components``
        columns). The old spelling ``dim`` still works (FutureWarning).
    proj_dim : int, default 32
    tau : float, default 0.1
    epochs, batch_size, lr, weight_decay, optimizer, patience, val_fraction, random_state, verbose :
        see :class:`~hcl_stats.contrastive.deep.training.DeepContrastive`.
    """

    _extra_constraints = {"n_components": [Interval(int, 1, None)], "proj_dim": [Interval(int, 1, None)],
                          "tau": [Interval(float, 0, None, closed="neither")]}
    self_weight = 0.0

    def __init__(self, *, hidden=(128, 128), n_components=32, proj_dim=32, tau=0.1, epochs=50, batch_size=128, lr=1e-3,
                 weight_decay=1e-4, optimizer="adamw", patience=5, val_fraction=0.2, random_state=0, verbose=False,
                 **deprecated):
        if deprecated:
            n_components = _renamed_dim(type(self).__name__, deprecated, n_components)
        self.hidden = hidden
        self.n_components = n_components
        self.proj_dim = proj_dim
        self.tau = tau
        self._set_common(epochs, batch_size, lr, weight_decay, optimizer, patience, val_fraction, random_state, verbose)

    def _build(self, n_features, n_classes):
        return _CrossNet(n_features, list(self.hidden), self.n_components, self.proj_dim)

    def _loss(self, net, xs, y, gen, epoch):
        z = [net.proj[m](net.enc[m](x)) for m, x in enumerate(xs)]
        loss = sum(clip_loss(z[a], z[b], self.tau) for a, b in itertools.combinations(range(len(xs)), 2))
        return loss

    def _embed(self, net, xs):
        return torch.cat([net.enc[m](x) for m, x in enumerate(xs)], 1)


class CrossSelf(Cross):
    """Cross + Self: the Cross objective on augmented views plus a SimCLR NT-Xent term within each
    modality between two augmentations (feature masking ``aug_mask`` and noise ``aug_noise``)."""

    _extra_constraints = {**Cross._extra_constraints, "aug_mask": [Interval(float, 0, 1, closed="left")],
                          "aug_noise": [Interval(float, 0, None)]}

    def __init__(self, *, hidden=(128, 128), n_components=32, proj_dim=32, tau=0.1, aug_mask=0.3, aug_noise=0.2,
                 epochs=50, batch_size=128, lr=1e-3, weight_decay=1e-4, optimizer="adamw", patience=5,
                 val_fraction=0.2, random_state=0, verbose=False, **deprecated):
        if deprecated:
            n_components = _renamed_dim(type(self).__name__, deprecated, n_components)
        super().__init__(hidden=hidden, n_components=n_components, proj_dim=proj_dim, tau=tau, epochs=epochs, batch_size=batch_size,
                         lr=lr, weight_decay=weight_decay, optimizer=optimizer, patience=patience,
                         val_fraction=val_fraction, random_state=random_state, verbose=verbose)
        self.aug_mask = aug_mask
        self.aug_noise = aug_noise

    def _loss(self, net, xs, y, gen, epoch):
        va = [augment(x, gen, self.aug_mask, self.aug_noise) for x in xs]
        vb = [augment(x, gen, self.aug_mask, self.aug_noise) for x in xs]
        za = [net.proj[m](net.enc[m](x)) for m, x in enumerate(va)]
        zb = [net.proj[m](net.enc[m](x)) for m, x in enumerate(vb)]
        loss = sum(clip_loss(za[a], zb[b], self.tau) for a, b in itertools.combinations(range(len(xs)), 2))
        return loss + sum(nt_xent(za[m], zb[m], self.tau) for m in range(len(xs)))


class SupCon(Cross):
    """Supervised contrastive learning (Khosla et al. 2020) as FactorCL's supervised baseline: the
    projections of x_1 and x_2 are the two views of a sample, positives are all vectors of the same
    class (:func:`~hcl_stats.contrastive.deep.training.supcon_loss`, temperature ``tau``, default 0.07 as in the
    official code, which does not L2-normalise; here the projections are normalised as in the
    SupCon paper). Needs labels: ``fit(Xs, y)``; bimodal. Representation: the encoder outputs
    [f_1(x_1), f_2(x_2)] as in :class:`Cross`."""

    supervised = True

    def __init__(self, *, hidden=(128, 128), n_components=32, proj_dim=32, tau=0.07, epochs=50, batch_size=128,
                 lr=1e-3, weight_decay=1e-4, optimizer="adamw", patience=5, val_fraction=0.2, random_state=0,
                 verbose=False, **deprecated):
        if deprecated:
            n_components = _renamed_dim(type(self).__name__, deprecated, n_components)
        super().__init__(hidden=hidden, n_components=n_components, proj_dim=proj_dim, tau=tau, epochs=epochs, batch_size=batch_size,
                         lr=lr, weight_decay=weight_decay, optimizer=optimizer, patience=patience,
                         val_fraction=val_fraction, random_state=random_state, verbose=verbose)

    def _build(self, n_features, n_classes):
        if len(n_features) != 2:
            raise ValueError(f"SupCon is bimodal: Xs must contain 2 modalities; got {len(n_features)}.")
        return super()._build(n_features, n_classes)

    def _loss(self, net, xs, y, gen, epoch):
        z = [net.proj[m](net.enc[m](x)) for m, x in enumerate(xs)]
        return supcon_loss(z[0], z[1], y, self.tau)
