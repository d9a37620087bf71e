"""COrAL (Cissee, Younis, Ahmadi 2026; built on CoMM) and a CoMM-style fusion model, re-implemented
for vector data on CPU after the official code (github.com/Caro-Ci/COrAL: ``modules/coral.py``,
``modules/coral_loss.py``, ``modules/mmfusion.py``, ``main_trifeature.py``)."""
from __future__ import annotations

import copy

import torch
from torch import nn
import torch.nn.functional as F

from ..._validation import Interval, Options
from .training import DeepContrastive, augment, mlp, nt_xent

__all__ = ["COrAL", "CoMM", "VectorTokenizer", "mask_tokens"]


def _sincos_embedding(n_tokens, d):
    """Fixed 1-D sine-cosine position embeddings over the token index, shape (1, n_tokens, d).

    Entry (t, 2i) is sin(t w_i) and entry (t, 2i + 1) is cos(t w_i), with
    w_i = 10000^(-2i / d) (the official ``build_1d_sincos_posemb`` layout; the official patch
    adapter uses its 2-D counterpart over image patches).

    Parameters
    ----------
    n_tokens : int
        Number of tokens.
    d : int
        Embedding width.

    Returns
    -------
    torch.Tensor
        The embeddings, float32 of shape (1, n_tokens, d).
    """
    pos = torch.arange(n_tokens, dtype=torch.float32)[:, None]
    w = torch.exp(torch.arange(0, d, 2, dtype=torch.float32) * -(torch.log(torch.tensor(10000.0)) / d))
    pe = torch.zeros(n_tokens, d)
    pe[:, 0::2] = torch.sin(pos * w)
    pe[:, 1::2] = torch.cos(pos * w[: d // 2])
    return pe[None]


class VectorTokenizer(nn.Module):
    """Per-modality encoder then tokenizer (the vector counterpart of the official AlexNet encoder
    + patch input adapter): an MLP ``p -> enc_hidden -> n_tokens * token_dim``, reshaped to
    ``n_tokens`` tokens of ``token_dim``, each mapped linearly to ``d`` plus a position
    embedding: ``pos_embedding="learned"`` (default; a trained parameter, initialised N(0, 0.02^2))
    or ``"sincos"`` (fixed 1-D sine-cosine embeddings over the token index,
    ``_sincos_embedding``, a buffer, not trained; the official patch adapter adds fixed 2-D
    sine-cosine embeddings). Every token is a function of the whole input vector."""

    def __init__(self, n_features, enc_hidden, n_tokens, token_dim, d, pos_embedding="learned"):
        super().__init__()
        if pos_embedding not in ("learned", "sincos"):
            raise ValueError(f"The 'pos_embedding' parameter of VectorTokenizer must be one of {{'learned', 'sincos'}}. Got {pos_embedding!r} instead.")
        self.n_tokens, self.token_dim = n_tokens, token_dim
        self.encoder = mlp(n_features, enc_hidden, n_tokens * token_dim)
        self.adapter = nn.Linear(token_dim, d)
        if pos_embedding == "learned":
            self.pos = nn.Parameter(0.02 * torch.randn(1, n_tokens, d))
        else:
            self.register_buffer("pos", _sincos_embedding(n_tokens, d))

    def forward(self, x):
        h = F.relu(self.encoder(x)).reshape(x.shape[0], self.n_tokens, self.token_dim)
        return self.adapter(h) + self.pos


class _Block(nn.Module):
    """One pre-LayerNorm transformer block (self-attention + MLP 4d with QuickGELU), as CoMM's,
    initialised as the official ``FusionTransformer_new.initialize`` (``modules/mmfusion.py``,
    one layer): attention input weights N(0, 1/d), attention output and MLP output weights
    N(0, 1/(2d)), MLP input weights N(0, 1/(2d))."""

    def __init__(self, d, heads):
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.fc1, self.fc2 = nn.Linear(d, 4 * d), nn.Linear(4 * d, d)
        n_layers = 1
        proj_std, attn_std, fc_std = d ** -0.5 * (2 * n_layers) ** -0.5, d ** -0.5, (2 * d) ** -0.5
        nn.init.normal_(self.attn.in_proj_weight, std=attn_std)
        nn.init.normal_(self.attn.out_proj.weight, std=proj_std)
        nn.init.normal_(self.fc1.weight, std=fc_std)
        nn.init.normal_(self.fc2.weight, std=proj_std)

    def forward(self, t):
        h = self.ln1(t)
        t = t + self.attn(h, h, h, need_weights=False)[0]
        h = self.fc1(self.ln2(t))
        return t + self.fc2(h * torch.sigmoid(1.702 * h))


class _AttnPool(nn.Module):
    """Attention pooling with one learned query vector (softmax over tokens of <token, q>)."""

    def __init__(self, d):
        super().__init__()
        self.query = nn.Parameter(torch.randn(d))

    def forward(self, t):
        w = torch.softmax(t @ self.query, dim=1)
        return (w[:, :, None] * t).sum(1)


def _bn_mlp(d_in, hidden, d_out):
    return mlp(d_in, hidden, d_out, batchnorm=True)


class _FusionNet(nn.Module):
    def __init__(self, n_features, d, heads, enc_hidden, n_tokens, token_dim, head_hidden, head_out, unique,
                 pos_embedding="learned"):
        super().__init__()
        M = len(n_features)
        self.tok_s = nn.ModuleList([VectorTokenizer(p, enc_hidden, n_tokens, token_dim, d, pos_embedding) for p in n_features])
        self.cls = nn.Parameter(torch.randn(1, 1, d))
        self.fusion = _Block(d, heads)
        self.ln_out = nn.LayerNorm(d)
        self.g = _bn_mlp(d, head_hidden, head_out)
        self.unique_path = unique
        if unique:
            du = max(1, d // 2)
            # the official MMFusion deep-copies the shared encoders and adapters: same initial weights
            self.tok_u = copy.deepcopy(self.tok_s)
            self.lin_u = nn.ModuleList([nn.Sequential(nn.Linear(d, d), nn.LayerNorm(d), nn.GELU(), nn.Linear(d, du))
                                        for _ in range(M)])
            self.pool_u = nn.ModuleList([_AttnPool(du) for _ in range(M)])
            self.h = nn.ModuleList([_bn_mlp(du, head_hidden, head_out) for _ in range(M)])

    def tokens(self, xs):
        return [self.tok_s[m](x) for m, x in enumerate(xs)]

    def fuse(self, toks):
        """CLS output of one attention block over [CLS, tokens...] (any subset of modalities)."""
        B = toks[0].shape[0]
        t = torch.cat([self.cls.expand(B, 1, -1)] + list(toks), 1)
        return self.ln_out(self.fusion(t)[:, 0])

    def unique(self, x, m):
        return self.pool_u[m](self.lin_u[m](self.tok_u[m](x)))


def mask_tokens(t, r, gen):
    """Zero each token of ``t`` (B, T, d) independently with probability ``r`` (official masking)."""
    keep = (torch.rand(t.shape[:2], generator=gen) >= r).to(t.dtype)
    return t * keep[:, :, None]


class _FusionBase(DeepContrastive):
    _extra_constraints = {"d": [Interval(int, 2, None)], "heads": [Interval(int, 1, None)],
                          "n_tokens": [Interval(int, 1, None)], "token_dim": [Interval(int, 1, None)],
                          "head_out": [Interval(int, 1, None)], "tau": [Interval(float, 0, None, closed="neither")],
                          "aug_mask": [Interval(float, 0, 1, closed="left")], "aug_noise": [Interval(float, 0, None)]}
    _unique = True

    def _build(self, n_features, n_classes):
        if self.d % self.heads:
            raise ValueError(f"The 'd' parameter of {type(self).__name__} must be divisible by 'heads' ({self.heads}). Got {self.d} instead.")
        return _FusionNet(n_features, self.d, self.heads, list(self.enc_hidden), self.n_tokens, self.token_dim,
                          list(self.head_hidden), self.head_out, self._unique,
                          getattr(self, "pos_embedding", "learned"))

    def _views(self, xs, gen):
        return [[augment(x, gen, self.aug_mask, self.aug_noise) for x in xs] for _ in range(2)]


class COrAL(_FusionBase):
    """COrAL: a shared fusion path and one unique path per modality, asymmetric complementary
    token masking, NT-Xent and orthogonality penalties.

    Shared path: per modality an encoder and tokenizer (:class:`VectorTokenizer`: MLP encoder
    ``enc_hidden``, ``n_tokens`` tokens of ``token_dim`` mapped to ``d``), then a CLS token and the
    tokens of all modalities through one pre-LN self-attention block (``heads`` heads); s = the
    normalised CLS output (d). Unique path of modality m: its own encoder and tokenizer (separate
    weights, initialised as a copy of the shared path's, as the official ``MMFusion`` deep-copies
    them), a token MLP d -> d -> d/2 (LayerNorm, GELU) and attention pooling with a
    learned query; u_m (d/2). Heads: g on s, h_m on u_m (``head_hidden`` with BatchNorm, ReLU,
    output ``head_out``; official 512, 512 -> 256).

    Two views per batch, each with its own vector augmentation (feature masking ``aug_mask``,
    noise ``aug_noise``; the official code uses image augmentations); in the fusion path only,
    view ' zeroes tokens of modality a and view '' those of the other modalities, each token with
    probability r (official: r = 0.75 static; tokens are multiplied by 0, as in the official
    code); for two modalities a is the first modality (view ' masks modality 1's tokens, view ''
    modality 2's, as the official forward: ``masking=0``, then ``masking=1``), for more a is drawn
    per batch. Loss (official
    ``CoralLoss``, weights 1): NT-Xent(tau = 0.1) on g(s'), g(s''); NT-Xent on h_m(u_m'),
    h_m(u_m'') for each m; plus ``lam`` times the per-sample cosine penalties between every pair
    of {h_1(u_1), ..., h_M(u_M), g(s)} within each view (6 terms for M = 2): ``orth="squared"``
    cos^2 (official) or ``"hinge"`` max(0, cos). Masking ratio r: ``mask="static"``
    (``mask_ratio``) or ``"schedule"`` (0.05, 0.35, 0.55, 0.75 from 0, 25, 50, 75 % of
    ``epochs``). Representation (official ``extract_features``): pre-head [s, u_1, ..., u_M] on the
    unmasked, unaugmented input, shape (n, d + M d/2).

    Two options switch deviations from the official code (defaults: ours). ``pos_embedding``:
    ``"learned"`` trained position embeddings of the tokens, or ``"sincos"`` fixed 1-D
    sine-cosine embeddings over the token index (not trained; the official patch adapter adds
    fixed sine-cosine embeddings). ``decay_1d``: True applies ``weight_decay`` to every
    parameter; False exempts the 1-d parameters (biases, LayerNorm and BatchNorm weights, the
    pooling queries), as the official ``set_weight_decay_per_param``; they are then stepped by
    a second optimizer of the same kind and settings with weight decay 0 (the same update as one
    optimizer with a no-decay parameter group; ``_inner_opt`` after fitting).

    Parameters
    ----------
    d : int, default 64 (official 512); heads : int, default 8 (official 8)
    enc_hidden : tuple, default (128,); n_tokens : int, default 8; token_dim : int, default 32
    head_hidden : tuple, default (256, 256); head_out : int, default 128 (official (512, 512), 256)
    tau : float, default 0.1; lam : float, default 1.0 (official Trifeature run); orth : {"squared", "hinge"}
    mask : {"static", "schedule"}; mask_ratio : float, default 0.75
    pos_embedding : {"learned", "sincos"}, default "learned" (official: fixed sine-cosine)
    decay_1d : bool, default True (official: False)
    epochs : default 100; batch_size : default 64; lr : default 1e-4; weight_decay : default 1e-3;
    optimizer : default "adamw"; patience : default None (fixed epochs, the official training);
    val_fraction, random_state, verbose : see :class:`~hcl_stats.contrastive.deep.training.DeepContrastive`.
    """

    _extra_constraints = {**_FusionBase._extra_constraints, "lam": [Interval(float, 0, None)],
                          "orth": [Options("squared", "hinge")], "mask": [Options("static", "schedule")],
                          "mask_ratio": [Interval(float, 0, 1, closed="left")],
                          "pos_embedding": [Options("learned", "sincos")], "decay_1d": [bool]}

    def __init__(self, *, d=64, heads=8, enc_hidden=(128,), n_tokens=8, token_dim=32, head_hidden=(256, 256),
                 head_out=128, tau=0.1, lam=1.0, orth="squared", mask="static", mask_ratio=0.75, aug_mask=0.3,
                 aug_noise=0.2, pos_embedding="learned", decay_1d=True, epochs=100, batch_size=64, lr=1e-4,
                 weight_decay=1e-3, optimizer="adamw", patience=None, val_fraction=0.2, random_state=0, verbose=False):
        self.d = d
        self.heads = heads
        self.enc_hidden = enc_hidden
        self.n_tokens = n_tokens
        self.token_dim = token_dim
        self.head_hidden = head_hidden
        self.head_out = head_out
        self.tau = tau
        self.lam = lam
        self.orth = orth
        self.mask = mask
        self.mask_ratio = mask_ratio
        self.aug_mask = aug_mask
        self.aug_noise = aug_noise
        self.pos_embedding = pos_embedding
        self.decay_1d = decay_1d
        self._set_common(epochs, batch_size, lr, weight_decay, optimizer, patience, val_fraction, random_state, verbose)

    def _inner_parameters(self, net):
        # decay_1d=False: the trained 1-d parameters go to the second optimizer (no weight decay)
        return [] if self.decay_1d else [p for p in net.parameters() if p.requires_grad and p.ndim < 2]

    def _inner(self, net, xs, y, gen):
        # the gradients of the 1-d parameters come from the main loss's backward pass; step them
        # without weight decay, then clear them (the main optimizer clears only its own)
        for group in self._inner_opt.param_groups:
            group["weight_decay"] = 0.0
        self._inner_opt.step()
        self._inner_opt.zero_grad(set_to_none=True)

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
        a = 0 if M == 2 else int(torch.randint(0, M, (1,), generator=gen))
        out = []
        for v, xv in enumerate(self._views(xs, gen)):
            toks = net.tokens(xv)
            if r > 0:
                toks = [mask_tokens(t, r, gen) if ((m == a) if v == 0 else (m != a)) else t for m, t in enumerate(toks)]
            s = net.fuse(toks)
            out.append((net.g(s), [net.h[m](net.unique(xv[m], m)) for m in range(M)]))
        (g1, h1), (g2, h2) = out
        loss = nt_xent(g1, g2, self.tau) + sum(nt_xent(h1[m], h2[m], self.tau) for m in range(M))
        return loss + self.lam * (self._penalty(h1 + [g1]) + self._penalty(h2 + [g2]))

    def _embed(self, net, xs):
        return torch.cat([net.fuse(net.tokens(xs))] + [net.unique(x, m) for m, x in enumerate(xs)], 1)


class CoMM(_FusionBase):
    """A CoMM-style model (Dufumier et al. 2025, "What to align in multimodal contrastive
    learning?"): COrAL's shared fusion path alone (same encoders, tokenizers, attention block and
    head g), trained on two augmented views with the CoMM objective

        NT-Xent(g(s'_all), g(s''_all)) + 1/(2M) sum_m [NT-Xent(g(s'_m), g(s''_all)) + NT-Xent(g(s''_m), g(s'_all))]

    where s_all fuses the tokens of all modalities and s_m those of modality m alone.
    Representation: the pre-head fused s_all, shape (n, d). Same parameters as :class:`COrAL`
    without the unique-path and masking options."""

    _unique = False

    def __init__(self, *, d=64, heads=8, enc_hidden=(128,), n_tokens=8, token_dim=32, head_hidden=(256, 256),
                 head_out=128, tau=0.1, aug_mask=0.3, aug_noise=0.2, epochs=100, batch_size=64, lr=1e-4,
                 weight_decay=1e-3, optimizer="adamw", patience=None, val_fraction=0.2, random_state=0, verbose=False):
        self.d = d
        self.heads = heads
        self.enc_hidden = enc_hidden
        self.n_tokens = n_tokens
        self.token_dim = token_dim
        self.head_hidden = head_hidden
        self.head_out = head_out
        self.tau = tau
        self.aug_mask = aug_mask
        self.aug_noise = aug_noise
        self._set_common(epochs, batch_size, lr, weight_decay, optimizer, patience, val_fraction, random_state, verbose)

    def _loss(self, net, xs, y, gen, epoch):
        M = len(xs)
        zs = []
        for xv in self._views(xs, gen):
            toks = net.tokens(xv)
            zs.append([net.g(net.fuse([toks[m]])) for m in range(M)] + [net.g(net.fuse(toks))])
        z1, z2 = zs
        loss = nt_xent(z1[-1], z2[-1], self.tau)
        return loss + sum(nt_xent(z1[m], z2[-1], self.tau) + nt_xent(z2[m], z1[-1], self.tau) for m in range(M)) / (2 * M)

    def _embed(self, net, xs):
        return net.fuse(net.tokens(xs))
