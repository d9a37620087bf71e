"""Data generators of the contrastive benchmarks (numpy only: usable without torch).

- :func:`factorcl_synthetic`: FactorCL's synthetic task as in the official generator (no
  observation noise, latent variance 0.5, U[0, 1] mixing to 100 features) with a controllable
  share of unique information in the label; optional observation noise (then the mutual
  information and the Bayes accuracy are finite / below 1 and reported exactly).
- :func:`trifeature_vectors`: a vector analogue of bimodal Trifeature for redundancy (R),
  uniqueness (U) and synergy (Syn), following the COrAL / CoMM protocol (biased pre-training set
  for synergy, unbiased labelled sets).
- :func:`hierarchical_task`: the linear hierarchical model of :func:`hcl_stats.simulate` with
  three modalities and a downstream response, split into train / validation / test.
- :func:`gaussian_mutual_information`: exact I(X1; X2) of a jointly Gaussian pair.

Every generator takes one ``random_state`` (int seed, SeedSequence, Generator or None, default
None: fresh entropy, as every data generator of the package; the old keyword ``rng`` still works
with a FutureWarning) and draws its fixed maps and its samples from separate child streams, so
the maps of a seed do not depend on sizes.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._validation import check_random_state
from ._deprecation import resolve_renamed

__all__ = ["Split", "TaskData", "factorcl_synthetic", "trifeature_vectors", "hierarchical_task",
           "gaussian_mutual_information", "factorcl_covariance", "factorcl_bayes_accuracy"]


@dataclass
class Split:
    """One split of a task.

    Attributes
    ----------
    Xs : list of ndarray of shape (n_samples, p_m)
        One array per modality.
    y : dict of str -> ndarray of shape (n_samples,)
        Labels or responses by task name (may be empty).
    latents : dict -> ndarray of shape (n_samples, d)
        The true latent variables by name (may be empty).
    """

    Xs: list
    y: dict = field(default_factory=dict)
    latents: dict = field(default_factory=dict)

    @property
    def n_samples(self):
        return self.Xs[0].shape[0]


@dataclass
class TaskData:
    """A benchmark task: ``pretrain`` (unlabelled training data for the representation, with
    its labels when a supervised method may use them), ``train``/``val``/``test`` labelled
    splits for the probes, and ``info`` (the generator's parameters and fixed maps)."""

    pretrain: Split
    train: Split
    val: Split
    test: Split
    info: dict = field(default_factory=dict)


def _split_rows(split: Split, idx) -> Split:
    return Split([X[idx] for X in split.Xs], {k: v[idx] for k, v in split.y.items()},
                 {k: v[idx] for k, v in split.latents.items()})


def _random_state(owner, random_state, deprecated):
    """``random_state``, or the deprecated ``rng`` keyword (FutureWarning pointing at the caller of ``owner``)."""
    if not deprecated:
        return random_state
    return resolve_renamed(owner, deprecated, {"rng": "random_state"}, {"random_state": random_state},
                           {"random_state": None}, stacklevel=4)["random_state"]


def _check_pos_int(v, name):
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer; got {v!r}.")
    return int(v)


# ---------------------------------------------------------------------------------------
# FactorCL synthetic
# ---------------------------------------------------------------------------------------
def factorcl_covariance(mix, d_shared=10, latent_var=0.5, noise_sd=0.0):
    """Joint covariance of (x1, x2) in :func:`factorcl_synthetic` from its mixing matrices
    ``mix = (U1, U2)`` (each (d_shared + d_unique, p)); the first ``d_shared`` latent rows are shared.

    Parameters
    ----------
    mix : tuple of two ndarray of shape (d_shared + d_unique, p)
        The mixing matrices U1, U2 (``info["mix"]`` of the task).
    d_shared : int, default 10
    latent_var : float, default 0.5
        Variance of every latent coordinate.
    noise_sd : float, default 0.0
        Standard deviation of the observation noise.

    Returns
    -------
    ndarray of shape (2 p, 2 p)
    """
    U1, U2 = (np.asarray(U, dtype=np.float64) for U in mix)
    v = float(latent_var)
    S11 = v * U1.T @ U1 + noise_sd ** 2 * np.eye(U1.shape[1])
    S22 = v * U2.T @ U2 + noise_sd ** 2 * np.eye(U2.shape[1])
    S12 = v * U1[:d_shared].T @ U2[:d_shared]
    return np.block([[S11, S12], [S12.T, S22]])


_FCL_DIMS = {"d_shared": 10, "d_unique": 6}


def gaussian_mutual_information(cov, p1) -> float:
    """I(X1; X2) in nats for a jointly Gaussian (X1, X2) with covariance ``cov`` whose first
    ``p1`` coordinates are X1: 1/2 (log det S11 + log det S22 - log det S).

    Parameters
    ----------
    cov : ndarray of shape (p, p)
        Joint covariance, positive definite.
    p1 : int
        Dimension of X1.

    Returns
    -------
    float
        The mutual information in nats.
    """
    cov = np.asarray(cov, dtype=np.float64)
    ld = lambda A: np.linalg.slogdet(A)[1]  # noqa: E731
    return 0.5 * (ld(cov[:p1, :p1]) + ld(cov[p1:, p1:]) - ld(cov))


def factorcl_bayes_accuracy(mix, label_weights, latent_var=0.5, noise_sd=0.0, d_shared=10) -> float:
    """Exact Bayes accuracy of :func:`factorcl_synthetic`'s label from (x1, x2).

    The latents w = (w_s, w_1, w_2) ~ N(0, latent_var I) and y = 1[a^T w >= 0] with ``label_weights``
    a; x = B w + noise is linear Gaussian, so w | x ~ N(mu(x), P) and a^T mu(x) ~ N(0, v_s) with
    v_s = a^T (latent_var I - P) a. The Bayes rule predicts 1[a^T mu >= 0] and its accuracy is
    E[Phi(abs(a^T mu) / sqrt(a^T P a))] = 1/2 + arctan(sqrt(v_s / a^T P a)) / pi; 1 without noise
    (the latents are then a linear function of x, as the mixing has full row rank).
    """
    U1, U2 = (np.asarray(U, dtype=np.float64) for U in mix)
    a = np.asarray(label_weights, dtype=np.float64)
    if noise_sd == 0:
        return 1.0
    d_u = U1.shape[0] - d_shared
    p1, p2 = U1.shape[1], U2.shape[1]
    K = d_shared + 2 * d_u
    B = np.zeros((p1 + p2, K))  # x = B w, w = (w_s, w_1, w_2)
    B[:p1, :d_shared] = U1[:d_shared].T
    B[:p1, d_shared:d_shared + d_u] = U1[d_shared:].T
    B[p1:, :d_shared] = U2[:d_shared].T
    B[p1:, d_shared + d_u:] = U2[d_shared:].T
    # posterior precision of w: I / latent_var + B^T B / noise^2
    prec = np.eye(K) / latent_var + B.T @ B / noise_sd ** 2
    P = np.linalg.solve(prec, np.eye(K))
    P = 0.5 * (P + P.T)
    post = float(a @ P @ a)
    sig = float(latent_var * a @ a) - post
    return float(0.5 + np.arctan(np.sqrt(max(sig, 0.0) / post)) / np.pi)


def factorcl_synthetic(n_samples=3000, unique_share=0.5, n_label_coords=6, n_features=100, noise_sd=0.0,
                       latent_var=0.5, val_fraction=0.2, test_fraction=0.2, random_state=None, **deprecated) -> TaskData:
    """FactorCL's synthetic task (official ``Synthetic/dataset.py``), optionally with observation noise.

    Latents w_s (10-d, shared), w_1, w_2 (6-d each), iid N(0, ``latent_var``) (official: variance
    0.5, i.e. sd 0.707); modality i = [w_s, w_i] U_i + N(0, noise_sd^2 I) with a fixed
    U_i ~ U[0, 1] of shape (16, n_features) (official: 100 features, no noise, ``noise_sd=0``).
    Label (official ``get_labels``): y = 1[sigmoid(mean of the chosen latent coordinates) >= 1/2]
    = 1[mean >= 0], the chosen coordinates being the first k_s of w_s and the first k_u of each of
    w_1 and w_2, k_s + 2 k_u = ``n_label_coords``; k_u = floor(unique_share * n_label_coords / 2 + 1/2),
    so the realised share of unique coordinates is 2 k_u / n_label_coords (``info["unique_share"]``).

    Without noise the latents are a linear function of (x1, x2), so I(X1; X2) is infinite and the
    Bayes accuracy is 1; with noise ``info["mi_x1x2"]`` is the exact I(X1; X2) (Gaussian formula)
    and ``info["bayes_accuracy"]`` the exact Bayes accuracy (:func:`factorcl_bayes_accuracy`).

    The rows are split into pretrain = train (1 - val - test), val and test; the representation
    may be trained on ``pretrain`` (with labels for the supervised models) and the probe is
    fitted on ``train``, tuned on ``val``, scored on ``test``. ``latents`` holds w_s, w_1, w_2
    ("shared", "unique1", "unique2") for probes of what a representation keeps.

    Parameters
    ----------
    n_samples : int, default 3000
        Rows in total, before the split.
    unique_share : float in [0, 1], default 0.5
        Target share of unique coordinates among the label's coordinates.
    n_label_coords : int, default 6
    n_features : int, default 100
        Features per modality.
    noise_sd : float, default 0.0
        Standard deviation of the observation noise (the official task has none).
    latent_var : float, default 0.5
        Variance of every latent coordinate (the official 0.5; standard deviation sqrt(0.5)).
    val_fraction, test_fraction : float, default 0.2
        Shares of the rows in the validation and test splits.
    random_state : int, SeedSequence, Generator or None, default None
        None draws fresh entropy (data generators of the package do); the old keyword ``rng``
        still works (FutureWarning).

    Returns
    -------
    TaskData
        ``pretrain`` is ``train``; every split's ``Xs`` holds two (n, n_features) arrays and
        ``y["label"]`` the binary label.
    """
    random_state = _random_state("factorcl_synthetic", random_state, deprecated)
    n = _check_pos_int(n_samples, "n_samples")
    k = _check_pos_int(n_label_coords, "n_label_coords")
    if not 0.0 <= float(unique_share) <= 1.0:
        raise ValueError(f"unique_share must be in [0, 1]; got {unique_share!r}.")
    if not float(latent_var) > 0 or not float(noise_sd) >= 0:
        raise ValueError(f"latent_var must be > 0 and noise_sd >= 0; got latent_var={latent_var!r}, noise_sd={noise_sd!r}.")
    d_s, d_u = _FCL_DIMS["d_shared"], _FCL_DIMS["d_unique"]
    k_u = int(np.floor(float(unique_share) * k / 2 + 0.5))
    k_s = k - 2 * k_u
    if k_u > d_u or k_s > d_s:
        raise ValueError(f"n_label_coords={k} with unique_share={unique_share} needs {k_s} shared and {k_u} unique coordinates per modality; at most {d_s} and {d_u} exist.")
    r_map, r_lat, r_noise, r_split = check_random_state(random_state).spawn(4)
    U = [r_map.uniform(0.0, 1.0, size=(d_s + d_u, n_features)) for _ in range(2)]
    sd = np.sqrt(float(latent_var))
    ws = sd * r_lat.standard_normal((n, d_s))
    wu = [sd * r_lat.standard_normal((n, d_u)) for _ in range(2)]
    Xs = [np.hstack([ws, wu[i]]) @ U[i] for i in range(2)]
    if noise_sd > 0:
        Xs = [X + noise_sd * r_noise.standard_normal((n, n_features)) for X in Xs]
    coords = np.hstack([ws[:, :k_s], wu[0][:, :k_u], wu[1][:, :k_u]])
    y = (coords.mean(axis=1) >= 0).astype(np.int64)
    full = Split(Xs, {"label": y}, {"shared": ws, "unique1": wu[0], "unique2": wu[1]})
    perm = r_split.permutation(n)
    n_val, n_test = int(round(val_fraction * n)), int(round(test_fraction * n))
    te, va, tr = perm[:n_test], perm[n_test:n_test + n_val], perm[n_test + n_val:]
    train = _split_rows(full, tr)
    a = np.zeros(d_s + 2 * d_u)
    a[:k_s] = 1.0
    a[d_s:d_s + k_u] = 1.0
    a[d_s + d_u:d_s + d_u + k_u] = 1.0
    if noise_sd > 0:
        mi = gaussian_mutual_information(factorcl_covariance(U, d_s, latent_var, noise_sd), n_features)
    else:
        mi = float("inf")
    info = {"unique_share": 2 * k_u / k, "k_shared": k_s, "k_unique": k_u, "noise_sd": float(noise_sd),
            "latent_var": float(latent_var), "mi_x1x2": mi, "label_weights": a,
            "bayes_accuracy": factorcl_bayes_accuracy(U, a, latent_var, noise_sd, d_s), "mix": U}
    return TaskData(train, train, _split_rows(full, va), _split_rows(full, te), info)


# ---------------------------------------------------------------------------------------
# vector Trifeature
# ---------------------------------------------------------------------------------------
def _random_net(rng, d_in, d_hidden, d_out):
    W1 = rng.standard_normal((d_in, d_hidden)) / np.sqrt(d_in)
    b1 = 0.5 * rng.standard_normal(d_hidden)
    W2 = rng.standard_normal((d_hidden, d_out)) / np.sqrt(d_hidden)
    return W1, b1, W2


def _apply_net(net, E):
    W1, b1, W2 = net
    H = np.tanh(E @ W1 + b1)
    out = H @ W2
    return out / np.sqrt(max(np.mean(np.sum(W2 ** 2, axis=0)), 1e-12))


def trifeature_vectors(n_pretrain=6000, n_train=2000, n_val=1000, n_test=2000, n_classes=8, n_features=24,
                       embed_dim=6, noise_sd=0.3, biased_pretrain=True, random_state=None, **deprecated) -> TaskData:
    """A vector analogue of bimodal Trifeature (redundancy, uniqueness, synergy).

    Each modality m = 1, 2 is an "image" with three attributes in {0, ..., n_classes - 1}: shape,
    texture and colour. The attributes of a modality go through fixed random class embeddings
    (``embed_dim`` each) and a fixed random two-layer tanh map (one per modality) to
    ``n_features`` features, plus N(0, noise_sd^2) noise. The two modalities share the shape
    (R); the texture of modality 1 is unique to it (U1); the synergy label is
    Syn = 1[colour_2 == pi(texture_1)] for a fixed random bijection pi.

    Protocol (CoMM / COrAL, official ``main_trifeature.py``): for the synergy probe the
    representation is trained on ``pretrain`` drawn BIASED (``biased_pretrain=True``): every pair
    satisfies colour_2 = pi(texture_1); for the redundancy and uniqueness probes a second
    representation is trained on an unbiased ``pretrain`` (``biased_pretrain=False``: all
    attributes independent). The same ``random_state`` gives the same maps and the same labelled
    splits whichever ``biased_pretrain``. The probes use unbiased labelled sets
    (``train``, ``val``, ``test``) in which shape, texture and colour are independent except
    that half of the pairs are drawn with colour_2 = pi(texture_1), so that Syn is balanced
    (balanced accuracy = accuracy up to sampling). Labels: ``y["R"]`` = shape, ``y["U"]`` =
    texture of modality 1, ``y["Syn"]``.

    Parameters
    ----------
    n_pretrain, n_train, n_val, n_test : int
        Rows of each split (defaults 6000, 2000, 1000, 2000).
    n_classes : int, default 8
        Values of each attribute (at least 2).
    n_features : int, default 24
        Features per modality.
    embed_dim : int, default 6
        Size of each attribute's class embedding.
    noise_sd : float, default 0.3
        Standard deviation of the observation noise.
    biased_pretrain : bool, default True
        True: every ``pretrain`` pair satisfies colour_2 = pi(texture_1) (the synergy protocol);
        False: the attributes of ``pretrain`` are independent (the redundancy / uniqueness protocol).
    random_state : int, SeedSequence, Generator or None, default None
        None draws fresh entropy; the old keyword ``rng`` still works (FutureWarning). A
        SeedSequence is consumed by the call (it spawns children): pass an int to draw the same
        task twice.

    Returns
    -------
    TaskData
        Every split's ``Xs`` holds two (n, n_features) arrays; ``latents``: ``"shape"``,
        ``"texture1"``, ``"colour2"``, each of shape (n, 1); ``info``: ``"n_classes"``,
        ``"bijection"`` (pi), ``"noise_sd"``.
    """
    random_state = _random_state("trifeature_vectors", random_state, deprecated)
    for v, nm in [(n_pretrain, "n_pretrain"), (n_train, "n_train"), (n_val, "n_val"), (n_test, "n_test"),
                  (n_classes, "n_classes"), (n_features, "n_features"), (embed_dim, "embed_dim")]:
        _check_pos_int(v, nm)
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2; got {n_classes}.")
    if not isinstance(biased_pretrain, (bool, np.bool_)):
        raise ValueError(f"biased_pretrain must be True or False; got {biased_pretrain!r}.")
    r_map, r_pre, r_tr, r_va, r_te = check_random_state(random_state).spawn(5)
    C = n_classes
    emb = {a: r_map.standard_normal((C, embed_dim)) for a in ("shape", "texture", "colour")}
    nets = [_random_net(r_map, 3 * embed_dim, 4 * n_features, n_features) for _ in range(2)]
    pi = r_map.permutation(C)

    def draw(r, n, mode):
        shape = r.integers(0, C, n)
        tex = [r.integers(0, C, n) for _ in range(2)]
        col = [r.integers(0, C, n) for _ in range(2)]
        if mode == "biased":
            syn = np.ones(n, dtype=np.int64)
        else:
            syn = (r.uniform(size=n) < 0.5).astype(np.int64)
        # colour_2: pi(texture_1) when syn, otherwise any other colour
        other = (pi[tex[0]] + r.integers(1, C, n)) % C
        col[1] = np.where(syn == 1, pi[tex[0]], other)
        if mode == "independent":  # colour_2 drawn independently of texture_1
            col[1] = r.integers(0, C, n)
            syn = (col[1] == pi[tex[0]]).astype(np.int64)
        Xs = []
        for m in range(2):
            E = np.hstack([emb["shape"][shape], emb["texture"][tex[m]], emb["colour"][col[m]]])
            Xs.append(_apply_net(nets[m], E) + noise_sd * r.standard_normal((n, n_features)))
        y = {"R": shape, "U": tex[0], "Syn": syn}
        lat = {"shape": shape[:, None], "texture1": tex[0][:, None], "colour2": col[1][:, None]}
        return Split(Xs, y, lat)

    info = {"n_classes": C, "bijection": pi, "noise_sd": noise_sd}
    info["biased_pretrain"] = bool(biased_pretrain)
    return TaskData(draw(r_pre, n_pretrain, "biased" if biased_pretrain else "independent"), draw(r_tr, n_train, "balanced"),
                    draw(r_va, n_val, "balanced"), draw(r_te, n_test, "balanced"), info)


# ---------------------------------------------------------------------------------------
# the linear hierarchical model
# ---------------------------------------------------------------------------------------
def hierarchical_task(structure=None, n_features=(30, 40, 50), n_pretrain=5000, n_train=1000, n_val=500,
                      n_test=2000, noise_var=1.0, response="linear", random_state=None, **deprecated) -> TaskData:
    """Three-modality data from the hierarchical linear model (:func:`hcl_stats.simulate`), one set
    of loadings, split into pretrain / train / val / test; ``y["y"]`` is the downstream response
    and ``latents`` holds every structure's true block z_S (keys: subsets).

    Default structure: {123} x2, {12} x2, {13} x2, {23} x2, specific x2 each (K = 14).

    Parameters
    ----------
    structure : Structure or None, default None
        None: ``Structure.full(3, 2)``.
    n_features : sequence of int, default (30, 40, 50)
        p_m, one per modality.
    n_pretrain, n_train, n_val, n_test : int
        Rows of each split (defaults 5000, 1000, 500, 2000).
    noise_var : float or sequence of float, default 1.0
        Noise variance, as in :func:`hcl_stats.simulate`.
    response : str, default "linear"
        Kind of downstream response, as in :func:`hcl_stats.simulate`.
    random_state : int, SeedSequence, Generator or None, default None
        None draws fresh entropy; the old keyword ``rng`` still works (FutureWarning).

    Returns
    -------
    TaskData
        ``info`` holds the structure, the loadings (p, K), ``beta``, ``noise_var``,
        ``n_features``, ``response`` and the population ``covariance`` (p, p).
    """
    from ..simulate import simulate
    from ..structure import Structure

    random_state = _random_state("hierarchical_task", random_state, deprecated)
    structure = Structure.full(3, 2) if structure is None else structure
    sizes = [_check_pos_int(v, nm) for v, nm in [(n_pretrain, "n_pretrain"), (n_train, "n_train"),
                                                   (n_val, "n_val"), (n_test, "n_test")]]
    n = sum(sizes)
    data = simulate(structure, n_features, n, noise_var, random_state=random_state, response=response)
    bounds = np.concatenate([[0], np.cumsum(sizes)])
    cols = structure.column_slices
    splits = []
    for a, b in zip(bounds[:-1], bounds[1:]):
        sl = slice(int(a), int(b))
        lat = {s: data.latents[sl, cs] for s, cs in cols.items()}
        splits.append(Split([X[sl] for X in data.Xs], {"y": data.y[sl]}, lat))
    info = {"structure": structure, "loadings": data.loadings, "beta": data.beta, "noise_var": data.noise_var,
            "n_features": data.n_features, "response": response, "covariance": data.covariance()}
    return TaskData(*splits, info)
