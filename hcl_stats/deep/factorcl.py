"""FactorCL (Liang et al., NeurIPS 2023), supervised and self-supervised, re-implemented for
vector data on CPU (reference: github.com/pliang279/FactorCL; its known defects avoided)."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from .._validation import Interval, Options
from ._train import ConcatCritic, DeepContrastive, augment, mlp

__all__ = ["FactorCL"]

_HEADS = ("s_nce", "s_club_cond", "u_nce_y", "u_club", "u_nce_cond")  # embedding order of one modality
_SHARED, _UNIQUE = _HEADS[:2], _HEADS[2:]


class _FactorCLNet(nn.Module):
    def __init__(self, n_features, hidden, dim, c, critic_hidden, critic_layers):
        super().__init__()
        self.enc = nn.ModuleList([mlp(p, hidden, dim) for p in n_features])
        self.heads = nn.ModuleList([nn.ModuleDict({h: mlp(dim, [dim], dim) for h in _HEADS}) for _ in range(2)])
        ch, cl = critic_hidden, critic_layers
        self.nce_x1x2 = ConcatCritic(dim, dim, ch, cl)
        self.club_x1x2 = ConcatCritic(dim, dim, ch, cl)
        self.nce_x1y = ConcatCritic(dim, c, ch, cl)
        self.nce_x2y = ConcatCritic(dim, c, ch, cl)
        self.nce_x1x2_cond = ConcatCritic(dim + c, dim + c, ch, cl)
        self.club_x1x2_cond = ConcatCritic(dim + c, dim + c, ch, cl)

    def feats(self, x, m):
        e = self.enc[m](x)
        return {h: self.heads[m][h](e) for h in _HEADS}


class FactorCL(DeepContrastive):
    """FactorCL: factorised shared and unique representations by MI lower and upper bounds.

    Objective (maximised; each term with its own projection heads and concat critic)::

        I_NCE(X1; X2) - I_CLUB(X1; X2 | Y) + I_NCE(X1; Y) + I_NCE(X2; Y) - I_CLUB(X1; X2) + I_NCE(X1; X2 | Y)

    InfoNCE: mean_i f(a_i, b_i) - mean_i logsumexp_j f(a_j, b_i) + log N with a concat critic on
    all N x N pairs (no temperature, no normalisation). NCE-CLUB: mean over positive pairs of f*
    minus the mean over all N^2 pairs, where f* is a critic fitted by InfoNCE. Conditional
    versions concatenate the condition to both critic inputs. Each training step: one outer
    step on everything except the two CLUB critics, then one inner step fitting the CLUB
    critics by InfoNCE on the same (detached) batch -- never on held-out data.

    ``mode="supervised"``: Y = one-hot labels (``fit(Xs, y)``). ``mode="ssl"``: Y is replaced by
    augmentations, I(X_i; X_i') for the label terms, and the conditional terms condition each
    modality on the projection of its own augmented view (not on a copy of itself).

    Representation (official ``get_embedding``): the five heads of each modality,
    [s_nce, s_club_cond, u_nce_y, u_club, u_nce_cond] for x1 then x2, shape (n, 10 * dim); the
    first two heads of a modality form Z_S, the last three Z_U.

    Parameters
    ----------
    mode : {"supervised", "ssl"}
    hidden : tuple of int, default (128, 128) (backbone; the paper text uses one layer of 512,
        the official code three)
    dim : int, default 32 (backbone output and head size)
    critic_hidden, critic_layers : concat critics, default 32 and 2
    aug_mask, aug_noise : augmentations (ssl)
    epochs, batch_size, lr, weight_decay, patience, val_fraction, random_state, verbose :
        see :class:`~hcl_stats.deep._train.DeepContrastive` (lr 1e-3 here; the paper's 1e-4 needs
        more epochs than a CPU budget allows).
    """

    _extra_constraints = {"mode": [Options("supervised", "ssl")], "dim": [Interval(int, 1, None)],
                          "critic_hidden": [Interval(int, 1, None)], "critic_layers": [Interval(int, 1, None)],
                          "aug_mask": [Interval(float, 0, 1, closed="left")], "aug_noise": [Interval(float, 0, None)]}

    def __init__(self, mode="supervised", *, hidden=(128, 128), dim=32, critic_hidden=32, critic_layers=2, aug_mask=0.3,
                 aug_noise=0.2, epochs=50, batch_size=128, lr=1e-3, weight_decay=1e-4, patience=5, val_fraction=0.2,
                 random_state=0, verbose=False):
        self.mode = mode
        self.hidden = hidden
        self.dim = dim
        self.critic_hidden = critic_hidden
        self.critic_layers = critic_layers
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

    @property
    def supervised(self):
        return self.mode == "supervised"

    def _build(self, n_features, n_classes):
        if len(n_features) != 2:
            raise ValueError(f"FactorCL is bimodal: Xs must contain 2 modalities; got {len(n_features)} (concatenate modalities to form two).")
        c = n_classes if self.mode == "supervised" else self.dim
        return _FactorCLNet(n_features, list(self.hidden), self.dim, c, self.critic_hidden, self.critic_layers)

    def _inner_parameters(self, net):
        return list(net.club_x1x2.parameters()) + list(net.club_x1x2_cond.parameters())

    def _terms(self, net, xs, y, gen):
        f1, f2 = net.feats(xs[0], 0), net.feats(xs[1], 1)
        if self.mode == "supervised":
            yo = F.one_hot(y, self.n_classes_).to(xs[0].dtype)
            c1 = c2 = {h: yo for h in _HEADS}
        else:
            a1 = net.feats(augment(xs[0], gen, self.aug_mask, self.aug_noise), 0)
            a2 = net.feats(augment(xs[1], gen, self.aug_mask, self.aug_noise), 1)
            c1, c2 = a1, a2
        return f1, f2, c1, c2

    def _loss(self, net, xs, y, gen, epoch):
        f1, f2, c1, c2 = self._terms(net, xs, y, gen)
        cat = lambda a, b: torch.cat([a, b], 1)  # noqa: E731
        obj = (net.nce_x1x2.infonce(f1["s_nce"], f2["s_nce"])
               - net.club_x1x2_cond.club(cat(f1["s_club_cond"], c1["s_club_cond"]), cat(f2["s_club_cond"], c2["s_club_cond"]))
               + net.nce_x1y.infonce(f1["u_nce_y"], c1["u_nce_y"])
               + net.nce_x2y.infonce(f2["u_nce_y"], c2["u_nce_y"])
               - net.club_x1x2.club(f1["u_club"], f2["u_club"])
               + net.nce_x1x2_cond.infonce(cat(f1["u_nce_cond"], c1["u_nce_cond"]), cat(f2["u_nce_cond"], c2["u_nce_cond"])))
        return -obj

    def _inner(self, net, xs, y, gen):
        with torch.no_grad():
            f1, f2, c1, c2 = self._terms(net, xs, y, gen)
        cat = lambda a, b: torch.cat([a, b], 1)  # noqa: E731
        loss = -(net.club_x1x2.infonce(f1["u_club"], f2["u_club"])
                 + net.club_x1x2_cond.infonce(cat(f1["s_club_cond"], c1["s_club_cond"]), cat(f2["s_club_cond"], c2["s_club_cond"])))
        self._inner_opt.zero_grad(set_to_none=True)
        loss.backward()
        self._inner_opt.step()

    def _embed(self, net, xs):
        f1, f2 = net.feats(xs[0], 0), net.feats(xs[1], 1)
        return torch.cat([f1[h] for h in _HEADS] + [f2[h] for h in _HEADS], 1)
