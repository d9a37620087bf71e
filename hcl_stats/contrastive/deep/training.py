"""Training utilities shared by the deep contrastive models: seeding, MLPs, vector augmentations,
contrastive losses (NT-Xent, SupCon, InfoNCE with a concat critic), and one training loop with
seeded batching, either a fixed number of epochs (the official FactorCL / COrAL protocol) or early
stopping on a validation split, an optional monitor called during training (learning curves),
and a tqdm progress bar."""
from __future__ import annotations

import contextlib
import copy
import numbers
import time

import numpy as np
import torch
from torch import nn
import torch.nn.functional as F

from ..._validation import Interval, Options, check_random_state, check_Xs, validate_params
from ...base import BaseEstimator
from ...exceptions import NotFittedError

__all__ = ["torch_seed", "seed_everything", "deterministic", "mlp", "augment", "nt_xent", "supcon_loss", "ConcatCritic", "DeepContrastive"]


def torch_seed(random_state) -> int:
    """The int seed of a deep model's ``random_state``: an int is used as is; a numpy Generator,
    SeedSequence or None (fresh entropy) draws one in [0, 2^31 - 1) through
    :func:`hcl_stats._validation.check_random_state`."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).integers(0, 2 ** 31 - 1))


def seed_everything(seed: int) -> torch.Generator:
    """Seed torch's global generator and return a fresh ``torch.Generator`` seeded with ``seed``
    (used for batching, augmentations and masking)."""
    torch.manual_seed(int(seed))
    return torch.Generator().manual_seed(int(seed))


@contextlib.contextmanager
def deterministic():
    """Turn on ``torch.use_deterministic_algorithms`` for the duration of a fit, then restore it."""
    prev = torch.are_deterministic_algorithms_enabled()
    prev_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(prev, warn_only=prev_warn)


def mlp(d_in, hidden, d_out, batchnorm=False, dropout=0.0):
    """A ReLU MLP d_in -> hidden[0] -> ... -> d_out (no activation on the output)."""
    layers, d = [], d_in
    for h in hidden:
        layers.append(nn.Linear(d, h))
        if batchnorm:
            layers.append(nn.BatchNorm1d(h))
        layers.append(nn.ReLU())
        if dropout:
            layers.append(nn.Dropout(dropout))
        d = h
    layers.append(nn.Linear(d, d_out))
    return nn.Sequential(*layers)


def augment(x, gen, mask_prob=0.3, noise_sd=0.2):
    """Augmentation for standardised vector data: each feature is zeroed (set to its mean) with
    probability ``mask_prob`` and Gaussian noise of sd ``noise_sd`` is added (draws from ``gen``)."""
    keep = (torch.rand(x.shape, generator=gen) >= mask_prob).to(x.dtype)
    return x * keep + noise_sd * torch.randn(x.shape, generator=gen)


def nt_xent(z1, z2, tau=0.1):
    """NT-Xent (SimCLR) loss on two views (N, d) each: 2N x 2N cosine similarities / tau, the
    other view of the same sample as the positive, the other 2N - 2 as negatives."""
    z = F.normalize(torch.cat([z1, z2], 0), dim=1)
    n = z1.shape[0]
    sim = z @ z.T / tau
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)])
    return F.cross_entropy(sim, target)


def supcon_loss(z1, z2, y, tau=0.07):
    """Supervised contrastive loss (Khosla et al. 2020, the "all" anchors form used by FactorCL's
    baseline) on two views (N, d) of N samples with labels ``y`` (N,): anchors are the 2N
    L2-normalised vectors, positives every other vector of the same class (including the other
    view of the same sample), the denominator all 2N - 1 other vectors; scaled by tau / 0.07 as
    in the reference implementation (so tau = 0.07 gives the plain mean)."""
    z = F.normalize(torch.cat([z1, z2], 0), dim=1)
    n2 = z.shape[0]
    yy = torch.cat([y, y])
    eye = torch.eye(n2, dtype=torch.bool)
    sim = (z @ z.T / tau).masked_fill(eye, float("-inf"))
    logp = sim - torch.logsumexp(sim, dim=1, keepdim=True)
    pos = (yy[:, None] == yy[None, :]) & ~eye
    mean_pos = torch.where(pos, logp, torch.zeros_like(logp)).sum(1) / pos.sum(1).clamp(min=1)
    return -(tau / 0.07) * mean_pos.mean()


def clip_loss(z1, z2, tau=0.1):
    """Symmetric InfoNCE (CLIP) between two modalities' L2-normalised projections."""
    z1, z2 = F.normalize(z1, dim=1), F.normalize(z2, dim=1)
    logits = z1 @ z2.T / tau
    t = torch.arange(z1.shape[0])
    return 0.5 * (F.cross_entropy(logits, t) + F.cross_entropy(logits.T, t))


class ConcatCritic(nn.Module):
    """Concat critic f(a, b) = MLP([a, b]) evaluated on all N x N pairs.

    The first layer is split, W [a; b] = W_a a + W_b b, so the N^2 pairs cost one (N, N, h)
    activation instead of N^2 concatenations; the function is exactly the concat critic.
    ``scores(a, b)[i, j] = f(a_j, b_i)``.
    """

    def __init__(self, d_a, d_b, hidden=64, layers=2):
        super().__init__()
        self.fa = nn.Linear(d_a, hidden)
        self.fb = nn.Linear(d_b, hidden, bias=False)
        rest = []
        for _ in range(layers - 1):
            rest += [nn.ReLU(), nn.Linear(hidden, hidden)]
        rest += [nn.ReLU(), nn.Linear(hidden, 1)]
        self.rest = nn.Sequential(*rest)

    def scores(self, a, b):
        ha, hb = self.fa(a), self.fb(b)
        return self.rest(ha[None, :, :] + hb[:, None, :]).squeeze(-1)

    def infonce(self, a, b):
        """InfoNCE lower bound on I(A; B): mean_i f(a_i, b_i) - mean_i logsumexp_j f(a_j, b_i) + log N."""
        T = self.scores(a, b)
        n = T.shape[0]
        return torch.diagonal(T).mean() - (torch.logsumexp(T, dim=1).mean() - np.log(n))

    def club(self, a, b):
        """NCE-CLUB upper bound with this critic: mean over positive pairs - mean over all N^2 pairs."""
        T = self.scores(a, b)
        return torch.diagonal(T).mean() - T.mean()


def _to_tensor(X):
    return torch.as_tensor(np.ascontiguousarray(X), dtype=torch.float32)


class DeepContrastive(BaseEstimator):
    """Base class: the training loop and the estimator contract of the deep models.

    Subclasses implement ``_build(n_features, n_classes)`` returning an ``nn.Module``,
    ``_loss(module, xs, y, gen, epoch)`` returning a scalar tensor to minimise (the training
    objective of one batch), ``_embed(module, xs)`` returning the representation, and
    optionally ``_inner(module, xs, y, gen)`` (an extra step on ``_inner_parameters``,
    e.g. FactorCL's CLUB critics).

    Common parameters: ``epochs`` (maximum, or the fixed number when ``patience`` is None),
    ``batch_size``, ``lr``, ``weight_decay``, ``optimizer`` ("adamw", or "adam": plain Adam
    with L2 penalty ``weight_decay``, the official FactorCL setting with 0), ``patience``
    (epochs without improvement of the validation loss before stopping; None = no early
    stopping: train exactly ``epochs`` epochs on all the data, no validation split, as the
    official FactorCL and COrAL code do), ``val_fraction`` (held out of the training data
    when early stopping and no validation data are given), ``random_state`` (int seed, default
    0: same seed -> identical weights on CPU; a numpy Generator or SeedSequence, or None for
    fresh entropy, draws the int seed, recorded as ``seed_``), ``verbose`` (tqdm progress bar).

    ``fit(..., monitor=f, monitor_every=k)`` calls ``f(self, epoch, step)`` before training
    and after every k-th epoch (and the last) with the model in eval mode (``transform``
    works); its return values are stored in ``history_["monitor"]`` as
    ``(epoch, step, value)`` (e.g. a probe's validation accuracy: a learning curve).

    Inputs are standardised with the training means and standard deviations; tensors are
    float32.
    """

    _common_constraints = {
        "epochs": [Interval(int, 1, None)],
        "batch_size": [Interval(int, 2, None)],
        "lr": [Interval(float, 0, None, closed="neither")],
        "weight_decay": [Interval(float, 0, None)],
        "patience": [Interval(int, 1, None), None],
        "optimizer": [Options("adam", "adamw")],
        "val_fraction": [Interval(float, 0, 1, closed="neither")],
        "random_state": [Interval(int, 0, None), None, np.random.Generator, np.random.SeedSequence],
        "verbose": [bool],
    }
    _extra_constraints: dict = {}
    supervised = False

    # -- hooks ----------------------------------------------------------------------------
    def _build(self, n_features, n_classes):  # pragma: no cover - abstract
        raise NotImplementedError

    def _loss(self, module, xs, y, gen, epoch):  # pragma: no cover - abstract
        raise NotImplementedError

    def _embed(self, module, xs):  # pragma: no cover - abstract
        raise NotImplementedError

    def _inner(self, module, xs, y, gen):
        return None

    def _inner_parameters(self, module):
        return []

    # -- fitting --------------------------------------------------------------------------
    def _prepare(self, Xs, fit=False):
        Xs = check_Xs(Xs, n_modalities=None if fit else len(self.n_features_),
                      n_features=None if fit else self.n_features_, min_samples=1 if not fit else 4)
        if fit:
            self.means_ = [X.mean(0) for X in Xs]
            self.scales_ = [np.where(X.std(0) > 0, X.std(0), 1.0) for X in Xs]
        return [_to_tensor((X - mu) / sd) for X, mu, sd in zip(Xs, self.means_, self.scales_)]

    def _check_y(self, y, n):
        if y is None:
            if self.supervised:
                raise ValueError(f"{type(self).__name__} is supervised: fit needs labels y (integer classes of shape (n_samples,)); got None.")
            return None
        y = np.asarray(y)
        if y.shape != (n,) or not np.issubdtype(y.dtype, np.integer) or y.min() < 0:
            raise ValueError(f"y must be an array of non-negative integer class labels of shape ({n},); got {y.dtype} array of shape {y.shape}.")
        return torch.as_tensor(y, dtype=torch.long)

    def fit(self, Xs, y=None, Xs_val=None, y_val=None, monitor=None, monitor_every=1):
        """Train on ``Xs`` (list of (n_samples, p_m) arrays; labels ``y`` for supervised models).

        ``patience`` None: exactly ``epochs`` epochs on all of ``Xs`` (``Xs_val`` ignored), the
        final weights are kept. Otherwise early stopping monitors the training objective on
        ``Xs_val`` (or on a random ``val_fraction`` of ``Xs`` when not given) and the weights of
        the best epoch are kept. ``monitor``: see the class docstring. Returns self.
        """
        validate_params(type(self).__name__, self.get_params(), {**self._common_constraints, **self._extra_constraints})
        t0 = time.perf_counter()
        Xs = check_Xs(Xs, min_samples=4)
        n = Xs[0].shape[0]
        yt_all = self._check_y(y, n)
        self.seed_ = torch_seed(self.random_state)
        gen = seed_everything(self.seed_)
        early = self.patience is not None
        if not early:
            Xs_val = y_val = None
        elif Xs_val is None:
            perm = torch.randperm(n, generator=gen).numpy()
            n_val = max(2, int(round(self.val_fraction * n)))
            va, tr = perm[:n_val], perm[n_val:]
            Xs_val = [X[va] for X in Xs]
            Xs = [X[tr] for X in Xs]
            if yt_all is not None:
                y_val, yt_all = yt_all[va].numpy(), yt_all[tr]
        else:
            Xs_val = check_Xs(Xs_val, n_modalities=len(Xs), n_features=tuple(X.shape[1] for X in Xs))
        self.n_features_ = tuple(X.shape[1] for X in Xs)
        xs = self._prepare(Xs, fit=True)
        xv = self._prepare(Xs_val) if early else None
        yv = (self._check_y(y_val, xv[0].shape[0]) if (y_val is not None or self.supervised) else None) if early else None
        n_classes = int(max(int(yt_all.max()), int(yv.max()) if yv is not None else 0) + 1) if yt_all is not None else 0
        self.n_classes_ = n_classes
        Opt = torch.optim.Adam if self.optimizer == "adam" else torch.optim.AdamW
        with deterministic():
            module = self._build(self.n_features_, n_classes)
            self.module_ = module
            inner_params = list(self._inner_parameters(module))
            inner_ids = {id(p) for p in inner_params}
            outer_params = [p for p in module.parameters() if id(p) not in inner_ids]
            opt = Opt(outer_params, lr=self.lr, weight_decay=self.weight_decay)
            self._inner_opt = Opt(inner_params, lr=self.lr, weight_decay=self.weight_decay) if inner_params else None
            best, best_state, bad = np.inf, None, 0
            hist = {"train_loss": [], "val_loss": [], "monitor": []}
            n_tr = xs[0].shape[0]
            bs = min(self.batch_size, n_tr)
            n_batches = max(1, n_tr // bs)
            bar = None
            if self.verbose:
                from tqdm.auto import tqdm
                bar = tqdm(total=self.epochs, desc=type(self).__name__, leave=False)

            def _monitor(ep, step):
                module.eval()
                with torch.random.fork_rng():
                    hist["monitor"].append((ep, step, monitor(self, ep, step)))

            if monitor is not None:
                _monitor(0, 0)
            epoch, step = 0, 0
            for epoch in range(self.epochs):
                module.train()
                perm = torch.randperm(n_tr, generator=gen)
                tot = 0.0
                for b in range(n_batches):
                    idx = perm[b * bs:(b + 1) * bs]
                    xb = [x[idx] for x in xs]
                    yb = yt_all[idx] if yt_all is not None else None
                    loss = self._loss(module, xb, yb, gen, epoch)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if self._inner_opt is not None:
                        self._inner(module, xb, yb, gen)
                    tot += float(loss.detach())
                    step += 1
                hist["train_loss"].append(tot / n_batches)
                if monitor is not None and ((epoch + 1) % monitor_every == 0 or epoch + 1 == self.epochs):
                    _monitor(epoch + 1, step)
                stop = False
                if early:
                    vloss = self._evaluate(module, xv, yv, epoch)
                    hist["val_loss"].append(vloss)
                    if vloss < best - 1e-6 * max(1.0, abs(best) if np.isfinite(best) else 1.0):
                        best, bad = vloss, 0
                        best_state = copy.deepcopy(module.state_dict())
                    else:
                        bad += 1
                    stop = bad >= self.patience
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(train=f"{hist['train_loss'][-1]:.4g}")
                if stop:
                    break
            if bar is not None:
                bar.close()
            if best_state is not None:
                module.load_state_dict(best_state)
        module.eval()
        self.module_ = module
        self.history_ = {k: (np.asarray(v) if k != "monitor" else v) for k, v in hist.items()}
        self.n_epochs_ = epoch + 1
        self.n_steps_ = step
        self.best_val_loss_ = float(best)
        self.fit_time_ = time.perf_counter() - t0
        return self

    def _evaluate(self, module, xv, yv, epoch):
        """Mean training objective over validation batches (augmentations and masks drawn from a
        generator seeded by ``seed_ + 1`` so the score is comparable across epochs)."""
        module.eval()
        g = torch.Generator().manual_seed(self.seed_ + 1)
        n = xv[0].shape[0]
        bs = min(self.batch_size, n)
        nb = max(1, n // bs)
        tot = 0.0
        with torch.no_grad():
            for b in range(nb):
                sl = slice(b * bs, (b + 1) * bs)
                tot += float(self._loss(module, [x[sl] for x in xv], yv[sl] if yv is not None else None, g, epoch))
        return tot / nb

    def transform(self, Xs):
        """The representation of ``Xs`` (numpy float64 array of shape (n_samples, d))."""
        if not hasattr(self, "module_"):
            raise NotFittedError(f"This {type(self).__name__} instance is not fitted yet; call fit(Xs) first.")
        xs = self._prepare(Xs)
        self.module_.eval()
        with torch.no_grad():
            out = [self._embed(self.module_, [x[i:i + 4096] for x in xs]) for i in range(0, xs[0].shape[0], 4096)]
        return torch.cat(out, 0).double().numpy()

    def fit_transform(self, Xs, y=None):
        return self.fit(Xs, y).transform(Xs)

    def _set_common(self, epochs, batch_size, lr, weight_decay, optimizer, patience, val_fraction, random_state, verbose):
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.optimizer = optimizer
        self.patience = patience
        self.val_fraction = val_fraction
        self.random_state = random_state
        self.verbose = verbose

    def state_vector(self) -> np.ndarray:
        """All weights of the fitted module as one flat float64 vector (for determinism checks)."""
        return torch.cat([p.detach().reshape(-1) for p in self.module_.state_dict().values()
                          if p.dtype.is_floating_point]).double().numpy()
