"""FactorCL (Liang et al., NeurIPS 2023), supervised and self-supervised, re-implemented for
vector data on CPU after the official code (github.com/pliang279/FactorCL: ``synthetic_model.py``,
``critic_objectives.py``), with its known defects avoided (see the class docstring)."""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from ..._validation import Interval, Options
from ...exceptions import NotFittedError
from .._deprecation import resolve_renamed
from .training import ConcatCritic, DeepContrastive, augment, mlp

__all__ = ["FactorCL"]

_HEADS = ("s_nce", "s_club_cond", "u_nce_y", "u_club", "u_nce_cond")  # head order of one modality
_SHARED, _UNIQUE = _HEADS[:2], _HEADS[2:]


class _FactorCLNet(nn.Module):
    def __init__(self, n_features, hidden, dim, c, critic_hidden, critic_layers, factorized, cond_both=False):
        super().__init__()
        self.enc = nn.ModuleList([mlp(p, hidden, dim) for p in n_features])
        names = _HEADS if factorized else ("one",)
        self.heads = nn.ModuleList([nn.ModuleDict({h: mlp(dim, [dim, dim], dim) for h in names}) for _ in range(2)])
        self.factorized = factorized
        ch, cl = critic_hidden, critic_layers
        self.nce_x1x2 = ConcatCritic(dim, dim, ch, cl)
        self.club_x1x2 = ConcatCritic(dim, dim, ch, cl)
        self.nce_x1y = ConcatCritic(dim, c, ch, cl)
        self.nce_x2y = ConcatCritic(dim, c, ch, cl)
        # conditional critics: the condition joins x1's head (supervised, official FactorCLSUP) or
        # both heads (ssl: each modality with its own augmented view, official FactorCLSSL)
        d2 = dim + c if cond_both else dim
        self.nce_x1x2_cond = ConcatCritic(dim + c, d2, ch, cl)
        self.club_x1x2_cond = ConcatCritic(dim + c, d2, ch, cl)

    def backbone(self, x, m):
        return self.enc[m](x)

    def feats(self, x, m, e=None):
        e = self.enc[m](x) if e is None else e
        if not self.factorized:
            z = self.heads[m]["one"](e)
            return {h: z for h in _HEADS}
        return {h: self.heads[m][h](e) for h in _HEADS}


class FactorCL(DeepContrastive):
    """FactorCL: factorised shared and unique representations by MI lower and upper bounds.

    Objective (maximised; each term with its own projection head per modality and its own
    concat critic, all weights 1)::

        I_NCE(X1; X2) - I_CLUB(X1; X2 | Y) + I_NCE(X1; Y) + I_NCE(X2; Y) - I_CLUB(X1; X2) + I_NCE(X1; X2 | Y)

    The first two terms act on the shared heads (Z_S), the last four on the unique heads (Z_U).
    InfoNCE: mean_i f(a_i, b_i) - mean_i logsumexp_j f(a_j, b_i) + log N with a concat critic
    f(a, b) = MLP([a, b]) on all N x N pairs (no temperature, no normalisation). NCE-CLUB: mean
    over positive pairs of f* minus the mean over all N^2 pairs, where f* is a critic fitted by
    InfoNCE. As in the official code the conditional terms concatenate the condition to the
    first argument only: f([z1, c], z2). Each training step: one outer step on everything except
    the two CLUB critics, then one inner step fitting the CLUB critics by InfoNCE.

    ``mode="supervised"`` (FactorCL-SUP): Y = one-hot labels (``fit(Xs, y)``); the conditional
    critics see f([z1, y], z2) (official ``FactorCLSUP.forward``). ``mode="ssl"`` (FactorCL-SSL): Y
    is replaced by augmentations, I(X_i; X_i') for the label terms (one head applied to x_i and to
    its augmented view x_i'), and the conditional terms join each modality's head with the same
    head of its own augmented view, f([z1, z1'], [z2, z2']) (official ``FactorCLSSL.forward``).

    Ablations (the paper's "OurCL" rows are variants of this kind; the names here say what is
    removed): ``upper_bounds=False`` drops both NCE-CLUB terms (lower bounds only);
    ``factorized=False`` uses one head per modality for every term (no separate Z_S / Z_U).

    Representation (``embedding``): ``"backbone"`` (default) the backbone outputs
    [e_1(x_1), e_2(x_2)], shape (n, 2 * n_components) -- what the official synthetic code probes
    (``get_embedding``); ``"heads"`` the five heads of each modality,
    [s_nce, s_club_cond, u_nce_y, u_club, u_nce_cond] for x1 then x2, shape (n, 10 * n_components).
    :meth:`factors` returns Z_S and Z_U per modality separately (Table-1-style probes).

    Parameters
    ----------
    mode : {"supervised", "ssl"}
    hidden : tuple of int, default (512, 512, 512)
        Backbone hidden layers (official code: three of 512; the paper text says one).
    n_components : int, default 128
        Backbone output size per modality (the default representation has
        ``2 * n_components`` columns) and head size (official ``embed_dim`` 128); heads are MLPs
        n_components -> n_components -> n_components -> n_components as in the official code.
        The old spelling ``dim`` still works (FutureWarning).
    critic_hidden, critic_layers : int, default 512 and 2
        Concat critics MLP([a, b]) with ``critic_layers`` hidden layers of ``critic_hidden``
        (official: 512, two hidden layers). Their cost is N^2 * critic_hidden^2 per step: CPU
        benchmarks use a smaller width (stated with the results).
    upper_bounds, factorized : bool, default True (ablations, see above)
    embedding : {"backbone", "heads"}
    aug_mask, aug_noise : augmentations of the ssl mode (feature masking and noise; the official
        code uses halves swap, noise sd 0.01, 10 % drop or identity)
    epochs : int, default 10 (the official synthetic notebook)
    batch_size : int, default 256; lr : float, default 1e-4; optimizer : default "adam";
    weight_decay : default 0.0; patience : default None (no early stopping): the official
        training; val_fraction, random_state, verbose : see
        :class:`~hcl_stats.contrastive.deep.training.DeepContrastive`.

    Notes
    -----
    Differences from the official code, on purpose: the CLUB critics are fitted on the training
    batch (the official code samples them from the whole data set, test rows included); the
    SSL conditional upper bound conditions on the augmented views as its lower bound does (the
    official code concatenates each head with itself there, [z1, z1] and [z2, z2]); the concat critic computes its first layer as W_a a + W_b b
    (the same function as MLP([a, b]) at N^2 times less cost); the label critic sees the one-hot
    label (the official code the scalar label); inputs are standardised.
    """

    _extra_constraints = {"mode": [Options("supervised", "ssl")], "n_components": [Interval(int, 1, None)],
                          "critic_hidden": [Interval(int, 1, None)], "critic_layers": [Interval(int, 1, None)],
                          "upper_bounds": [bool], "factorized": [bool], "embedding": [Options("backbone", "heads")],
                          "aug_mask": [Interval(float, 0, 1, closed="left")], "aug_noise": [Interval(float, 0, None)]}

    def __init__(self, mode="supervised", *, hidden=(512, 512, 512), n_components=128, critic_hidden=512,
                 critic_layers=2, upper_bounds=True, factorized=True, embedding="backbone", aug_mask=0.3, aug_noise=0.2,
                 epochs=10, batch_size=256, lr=1e-4, weight_decay=0.0, optimizer="adam", patience=None,
                 val_fraction=0.2, random_state=0, verbose=False, **deprecated):
        if deprecated:
            n_components = resolve_renamed("FactorCL", deprecated, {"dim": "n_components"},
                                           {"n_components": n_components}, {"n_components": 128})["n_components"]
        self.mode = mode
        self.hidden = hidden
        self.n_components = n_components
        self.critic_hidden = critic_hidden
        self.critic_layers = critic_layers
        self.upper_bounds = upper_bounds
        self.factorized = factorized
        self.embedding = embedding
        self.aug_mask = aug_mask
        self.aug_noise = aug_noise
        self._set_common(epochs, batch_size, lr, weight_decay, optimizer, patience, val_fraction, random_state, verbose)

    @property
    def supervised(self):
        return self.mode == "supervised"

    def _build(self, n_features, n_classes):
        if len(n_features) != 2:
            raise ValueError(f"FactorCL is bimodal: Xs must contain 2 modalities; got {len(n_features)} (concatenate modalities to form two).")
        c = n_classes if self.mode == "supervised" else self.n_components
        return _FactorCLNet(n_features, list(self.hidden), self.n_components, c, self.critic_hidden, self.critic_layers,
                            self.factorized, cond_both=self.mode == "ssl")

    def _inner_parameters(self, net):
        if not self.upper_bounds:
            return []
        return list(net.club_x1x2.parameters()) + list(net.club_x1x2_cond.parameters())

    def _terms(self, net, xs, y, gen):
        """Heads of x1, x2 and the conditions c1, c2 (label terms of x1 and x2 use c1 / c2; the
        conditional terms join c1 to x1's head, and in the ssl mode c2 to x2's head)."""
        f1, f2 = net.feats(xs[0], 0), net.feats(xs[1], 1)
        if self.mode == "supervised":
            yo = F.one_hot(y, self.n_classes_).to(xs[0].dtype)
            c1 = c2 = {h: yo for h in _HEADS}
        else:
            c1 = net.feats(augment(xs[0], gen, self.aug_mask, self.aug_noise), 0)
            c2 = net.feats(augment(xs[1], gen, self.aug_mask, self.aug_noise), 1)
        return f1, f2, c1, c2

    def _cond_pair(self, f1, f2, c1, c2, head):
        """The two arguments of a conditional critic: [z1, c1] and z2 (supervised) or [z2, c2] (ssl)."""
        a = torch.cat([f1[head], c1[head]], 1)
        b = torch.cat([f2[head], c2[head]], 1) if self.mode == "ssl" else f2[head]
        return a, b

    def _loss(self, net, xs, y, gen, epoch):
        f1, f2, c1, c2 = self._terms(net, xs, y, gen)
        obj = (net.nce_x1x2.infonce(f1["s_nce"], f2["s_nce"])
               + net.nce_x1y.infonce(f1["u_nce_y"], c1["u_nce_y"])
               + net.nce_x2y.infonce(f2["u_nce_y"], c2["u_nce_y"])
               + net.nce_x1x2_cond.infonce(*self._cond_pair(f1, f2, c1, c2, "u_nce_cond")))
        if self.upper_bounds:
            obj = obj - (net.club_x1x2_cond.club(*self._cond_pair(f1, f2, c1, c2, "s_club_cond"))
                         + net.club_x1x2.club(f1["u_club"], f2["u_club"]))
        return -obj

    def _inner(self, net, xs, y, gen):
        with torch.no_grad():
            f1, f2, c1, c2 = self._terms(net, xs, y, gen)
        loss = -(net.club_x1x2.infonce(f1["u_club"], f2["u_club"])
                 + net.club_x1x2_cond.infonce(*self._cond_pair(f1, f2, c1, c2, "s_club_cond")))
        self._inner_opt.zero_grad(set_to_none=True)
        loss.backward()
        self._inner_opt.step()

    def _embed(self, net, xs):
        e1, e2 = net.backbone(xs[0], 0), net.backbone(xs[1], 1)
        if self.embedding == "backbone":
            return torch.cat([e1, e2], 1)
        f1, f2 = net.feats(None, 0, e1), net.feats(None, 1, e2)
        return torch.cat([f1[h] for h in _HEADS] + [f2[h] for h in _HEADS], 1)

    def factors(self, Xs):
        """The factorised representation of ``Xs``: dict with ``"ZS1"``, ``"ZS2"`` (the shared
        heads [s_nce, s_club_cond] of each modality, (n, 2 n_components)), ``"ZU1"``, ``"ZU2"`` (the
        unique heads [u_nce_y, u_club, u_nce_cond], (n, 3 n_components)) and ``"backbone"``
        (n, 2 n_components); float64."""
        if not hasattr(self, "module_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit(Xs) first.")
        xs = self._prepare(Xs)
        net = self.module_
        net.eval()
        with torch.no_grad():
            e = [net.backbone(xs[m], m) for m in range(2)]
            f = [net.feats(None, m, e[m]) for m in range(2)]
        out = {"backbone": torch.cat(e, 1)}
        for m in range(2):
            out[f"ZS{m + 1}"] = torch.cat([f[m][h] for h in _SHARED], 1)
            out[f"ZU{m + 1}"] = torch.cat([f[m][h] for h in _UNIQUE], 1)
        return {k: v.double().numpy() for k, v in out.items()}
