"""HCL with MLP encoders per (modality, level) and the structure-aware contrastive loss
(docs/method.md, section 8; the authors' EHR model, re-implemented)."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from ..._validation import Interval, Options
from ...structure import Structure
from .._deprecation import resolve_renamed
from .training import DeepContrastive, augment, mlp

__all__ = ["DeepHCL"]


class _HCLNet(nn.Module):
    def __init__(self, structure, n_features, hidden):
        super().__init__()
        self.structure = structure
        self.layout = {}  # (m, level) -> list of (subset, start, stop) in the encoder output
        encs = {}
        for m in range(structure.n_modalities):
            levels = sorted({len(s) for s in structure.subsets_containing(m)}, reverse=True)
            for lev in levels:
                subs = [s for s in structure.subsets_containing(m) if len(s) == lev]
                start, parts = 0, []
                for s in subs:
                    parts.append((s, start, start + structure.rank(s)))
                    start += structure.rank(s)
                self.layout[(m, lev)] = parts
                encs[f"{m}_{lev}"] = mlp(n_features[m], hidden, start)
        self.enc = nn.ModuleDict(encs)

    def forward(self, xs):
        """dict (m, S) -> (B, r_S) representation h_m^S."""
        out = {}
        for (m, lev), parts in self.layout.items():
            H = self.enc[f"{m}_{lev}"](xs[m])
            for s, a, b in parts:
                out[(m, s)] = H[:, a:b]
        return out


class DeepHCL(DeepContrastive):
    """Hierarchical contrastive learning with one MLP encoder per (modality, level).

    The encoder of modality m at level l (= len(S)) outputs one block of r_S coordinates for each
    structure S of size l containing m; h_m^S is that block. Representation (authors'): per
    structure the mean over its modalities of h_m^S, concatenated in ``structure.subsets``
    order, shape (n_samples, K).

    Parameters
    ----------
    structure : Structure or None
        None: all 2^M - 1 subsets, each with ``n_components`` components (the authors' default).
    n_components : int or None, default None
        Number of components of every subset when ``structure`` is None (None: 4, the
        authors' default). With a ``structure`` the ranks are the structure's, and passing
        ``n_components`` too is a ValueError. The old spelling ``rank`` still works
        (FutureWarning).
    loss : {"authors", "spectral"}, default "authors"
        "authors": h L2-normalised, Phi_ij = sum_S sum_{m, m' in S} <h_m^S(x_i), h_m'^S(x_j)>,
        loss = mean_{i != j} Phi_ij - mean_i Phi_ii + lam * overlap (section 8).
        "spectral": the deep counterpart of :class:`hcl_stats.contrastive.LinearContrastiveHCL`:
        no normalisation, Phi between two augmented views (so the self pairs m = m' compare
        two views of one sample), loss = sum_{m, m'} (-2 mean_i Phi^{mm'}_ii
        + mean_{i != j} (Phi^{mm'}_ij)^2) + lam * overlap.
    lam : float, default 1.0
        Weight of the overlap penalty sum_m sum_{S != S'} ||H_m^S^T H_m^S' / B||_F^2, the squared
        cross-moments (over the batch) between a modality's representations of different
        structures. The authors' code instead sums signed inner products of the first
        min(r_S, r_S') coordinates of the two vectors, which compares coordinates of unrelated
        spaces and rewards anti-alignment; we penalise the cross-moments.
    hidden : tuple of int, default (128, 128)
    aug_mask, aug_noise : augmentation of the "spectral" views.
    epochs, batch_size, lr, weight_decay, patience, val_fraction, random_state, verbose :
        see :class:`~hcl_stats.contrastive.deep.training.DeepContrastive`.

    Notes
    -----
    The authors' encoder of (m, level) is shared by all structures of that level and every one
    of them receives the same vector (sliced); here each structure has its own coordinates.
    """

    _extra_constraints = {"n_components": [Interval(int, 1, None), None], "loss": [Options("authors", "spectral")],
                          "lam": [Interval(float, 0, None)], "aug_mask": [Interval(float, 0, 1, closed="left")],
                          "aug_noise": [Interval(float, 0, None)]}

    def __init__(self, structure=None, *, n_components=None, loss="authors", lam=1.0, hidden=(128, 128), aug_mask=0.3,
                 aug_noise=0.2, epochs=50, batch_size=128, lr=1e-3, weight_decay=1e-4, optimizer="adamw", patience=5,
                 val_fraction=0.2, random_state=0, verbose=False, **deprecated):
        if deprecated:
            n_components = resolve_renamed("DeepHCL", deprecated, {"rank": "n_components"},
                                           {"n_components": n_components}, {"n_components": None})["n_components"]
        self.structure = structure
        self.n_components = n_components
        self.loss = loss
        self.lam = lam
        self.hidden = hidden
        self.aug_mask = aug_mask
        self.aug_noise = aug_noise
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.patience = patience
        self.val_fraction = val_fraction
        self.random_state = random_state
        self.verbose = verbose

    def _build(self, n_features, n_classes):
        s = self.structure
        if s is None:
            s = Structure.full(len(n_features), 4 if self.n_components is None else self.n_components)
        elif self.n_components is not None:
            raise ValueError(f"The 'n_components' parameter of DeepHCL must be None when a structure is given (the "
                             f"structure's ranks are used). Got {self.n_components!r} instead.")
        if not isinstance(s, Structure):
            raise ValueError(f"The 'structure' parameter of DeepHCL must be None or a Structure. Got {s!r} instead.")
        if s.n_modalities != len(n_features):
            raise ValueError(f"Xs has {len(n_features)} modalities but the structure of DeepHCL has "
                             f"n_modalities={s.n_modalities}.")
        self.structure_ = s
        return _HCLNet(s, n_features, list(self.hidden))

    def _overlap(self, h):
        s = self.structure_
        pen = 0.0
        for m in range(s.n_modalities):
            subs = s.subsets_containing(m)
            for i, a in enumerate(subs):
                for b in subs[i + 1:]:
                    C = h[(m, a)].T @ h[(m, b)] / h[(m, a)].shape[0]
                    pen = pen + 2.0 * (C ** 2).sum()
        return pen

    def _loss(self, net, xs, y, gen, epoch):
        s = self.structure_
        if self.loss == "authors":
            h = {k: F.normalize(v, dim=1) for k, v in net(xs).items()}
            B = xs[0].shape[0]
            phi = 0.0
            for sub in s.subsets:
                U = sum(h[(m, sub)] for m in sub)
                phi = phi + U @ U.T
            d = torch.diagonal(phi).sum()
            loss = (phi.sum() - d) / (B * (B - 1)) - d / B
            return loss + self.lam * self._overlap(h)
        va = [augment(x, gen, self.aug_mask, self.aug_noise) for x in xs]
        vb = [augment(x, gen, self.aug_mask, self.aug_noise) for x in xs]
        ha, hb = net(va), net(vb)
        B = xs[0].shape[0]
        off = ~torch.eye(B, dtype=torch.bool)
        M = s.n_modalities
        ga = [torch.cat([ha[(m, sub)] if m in sub else torch.zeros(B, s.rank(sub)) for sub in s.subsets], 1) for m in range(M)]
        gb = [torch.cat([hb[(m, sub)] if m in sub else torch.zeros(B, s.rank(sub)) for sub in s.subsets], 1) for m in range(M)]
        loss = 0.0
        for m in range(M):
            for mp in range(M):
                P = ga[m] @ gb[mp].T
                loss = loss - 2.0 * torch.diagonal(P).mean() + (P[off] ** 2).mean()
        return loss + self.lam * 0.5 * (self._overlap(ha) + self._overlap(hb))

    def _embed(self, net, xs):
        h = net(xs)
        return torch.cat([sum(h[(m, sub)] for m in sub) / len(sub) for sub in self.structure_.subsets], 1)
