"""The linear structure-aware contrastive estimator and the numpy task generators."""
import numpy as np
import pytest

from hcl_stats import Structure, simulate
from hcl_stats.contrastive import (LinearContrastiveHCL, check_contrastive_subspaces, contrastive_batch_loss,
                                   contrastive_loss, contrastive_loss_grad, contrastive_minimiser, stack_encoders)
from hcl_stats.contrastive.tasks import (factorcl_bayes_accuracy, factorcl_synthetic, gaussian_mutual_information,
                                         hierarchical_task, trifeature_vectors)
from hcl_stats.exceptions import NotFittedError

S3 = Structure({(0, 1, 2): 1, (0, 1): 2, (1, 2): 1, (0,): 1, (1,): 1, (2,): 2}, 3)
P3 = (6, 7, 8)


def _random_encoders(structure, n_features, rng):
    return {(m, s): rng.standard_normal((structure.rank(s), n_features[m])) for m, s in structure.blocks()}


# -- gradient vs finite differences -------------------------------------------------------
@pytest.mark.parametrize("overlap", [0.0, 0.7])
def test_gradient_matches_finite_differences(overlap):
    rng = np.random.default_rng(0)
    data = simulate(S3, P3, 500, noise_var=0.5, random_state=1)
    cov = np.cov(data.X, rowvar=False)
    enc = _random_encoders(S3, P3, rng)
    f, g = contrastive_loss_grad(enc, cov, P3, S3, 0.5, overlap=overlap)
    mask = S3.support_mask(P3).T
    B = stack_encoders(enc, S3, P3)
    h = 1e-6
    idx = np.argwhere(mask)
    for k in rng.choice(len(idx), size=40, replace=False):
        i, j = idx[k]
        Bp, Bm = B.copy(), B.copy()
        Bp[i, j] += h
        Bm[i, j] -= h
        fd = (contrastive_loss(Bp, cov, P3, S3, 0.5, overlap) - contrastive_loss(Bm, cov, P3, S3, 0.5, overlap)) / (2 * h)
        assert abs(fd - g[i, j]) <= 1e-6 * max(1.0, abs(g[i, j]))
    assert np.all(g[~mask] == 0)
    assert np.isclose(f, contrastive_loss(enc, cov, P3, S3, 0.5, overlap))


def test_batch_loss_is_the_covariance_loss_in_expectation():
    # expectation over batches of independent samples = the loss at the population covariance
    rng = np.random.default_rng(3)
    data = simulate(S3, P3, 2, noise_var=0.5, random_state=2)
    Sigma = data.covariance()
    enc = {k: 0.3 * v for k, v in _random_encoders(S3, P3, rng).items()}
    target = contrastive_loss(enc, Sigma, P3, S3, data.noise_var, overlap=0.5)
    L = np.linalg.cholesky(Sigma)
    vals = []
    for _ in range(300):
        X = rng.standard_normal((64, sum(P3))) @ L.T
        Xs = [X[:, :6], X[:, 6:13], X[:, 13:]]
        vals.append(contrastive_batch_loss(enc, Xs, S3, data.noise_var, overlap=0.5))
    se = np.std(vals) / np.sqrt(len(vals))
    assert abs(np.mean(vals) - target) < 4 * se  # within 4 standard errors


# -- solver ------------------------------------------------------------------------------
def test_solver_converges_to_the_lower_bound_at_the_population():
    data = simulate(S3, P3, 2, noise_var=0.5, random_state=4)
    for init in ("random", "spectral"):
        est = LinearContrastiveHCL(S3, noise_var=data.noise_var, init=init, random_state=0)
        est.fit_covariance(data.covariance(), P3)
        assert est.converged_
        assert est.grad_norm_ <= est.tol * max(1.0, abs(est.loss_))
        assert est.stop_crit_ <= est.tol_ == est.tol
        assert abs(est.loss_ - est.lower_bound_) <= 1e-8 * abs(est.lower_bound_)
        hist = est.history_["loss"]
        assert hist[-1] <= hist[0]


def test_population_minimiser_attains_the_bound():
    data = simulate(S3, P3, 2, noise_var=0.5, random_state=5)
    Sigma = data.covariance()
    enc = contrastive_minimiser(data.loadings, Sigma, P3, S3)
    f, g = contrastive_loss_grad(enc, Sigma, P3, S3, data.noise_var)
    est = LinearContrastiveHCL(S3, noise_var=data.noise_var, random_state=0).fit_covariance(Sigma, P3)
    assert np.isclose(f, est.lower_bound_, rtol=1e-12)
    assert np.max(np.abs(g)) < 1e-10


# -- the subspace relation ---------------------------------------------------------------------
def test_subspaces_match_hcl_at_the_population():
    # fed the exact covariance, the contrastive encoders span Sigma_mm^{-1} col(W_{m,S}), one
    # common orthogonal rotation per structure; the same subspaces as the covariance-based fit
    r = check_contrastive_subspaces(n_features=(12, 15, 18), n_samples=None, noise_var=0.5, random_state=0, hcl_method="init")
    assert r.converged
    assert r.max_sin_vs_truth() < 1e-6
    assert r.max_sin_vs_hcl() < 1e-6
    assert r.max_rotation_residual() < 1e-6


def test_subspaces_match_hcl_on_data_and_shrink_with_n():
    small = [check_contrastive_subspaces(n_features=(12, 15, 18), n_samples=2000, random_state=s) for s in range(2)]
    large = [check_contrastive_subspaces(n_features=(12, 15, 18), n_samples=32000, random_state=s) for s in range(2)]
    for a, b in zip(small, large):
        assert b.max_sin_vs_hcl() < a.max_sin_vs_hcl()
        assert b.max_sin_vs_truth() < a.max_sin_vs_truth()
        assert b.max_sin_vs_hcl() < 0.1
    # n x 16 -> errors / 4 for root-n rates; allow a factor 2 of sampling slack
    ratio = np.mean([a.max_sin_vs_truth() for a in small]) / np.mean([b.max_sin_vs_truth() for b in large])
    assert ratio > 2.0


# -- API -----------------------------------------------------------------------------------
def test_estimator_api_and_transform_shapes():
    data = simulate(S3, P3, 800, noise_var=0.5, random_state=6)
    est = LinearContrastiveHCL(S3, random_state=0)
    with pytest.raises(NotFittedError):
        est.transform(data.Xs)
    est.fit(data.Xs)
    assert set(est.encoders_) == set(S3.blocks())
    for (m, s), A in est.encoders_.items():
        assert A.shape == (S3.rank(s), P3[m])
    assert est.transform(data.Xs).shape == (800, S3.n_factors)
    assert est.transform(data.Xs, kind="concat").shape == (800, sum(len(s) * S3.rank(s) for s in S3.subsets))
    assert est.get_params()["overlap"] == 0.0
    est2 = LinearContrastiveHCL(S3, random_state=0).fit(data.Xs)
    np.testing.assert_array_equal(est.encoder_matrix_, est2.encoder_matrix_)


def test_parameter_validation_messages():
    data = simulate(S3, P3, 100, noise_var=0.5, random_state=7)
    with pytest.raises(ValueError, match="The 'overlap' parameter of LinearContrastiveHCL must be a float in"):
        LinearContrastiveHCL(S3, overlap=-1.0).fit(data.Xs)
    with pytest.raises(ValueError, match="The 'structure' parameter of LinearContrastiveHCL must be a Structure"):
        LinearContrastiveHCL("full").fit(data.Xs)
    with pytest.raises(ValueError, match="Xs has 2 modalities but the structure has n_modalities=3"):
        LinearContrastiveHCL(S3).fit(data.Xs[:2])
    with pytest.raises(ValueError, match="kind must be 'averaged' or 'concat'"):
        LinearContrastiveHCL(S3, random_state=0).fit(data.Xs).transform(data.Xs, kind="x")


def test_overlap_penalty_moves_the_minimiser():
    data = simulate(S3, P3, 2, noise_var=0.5, random_state=8)
    a = LinearContrastiveHCL(S3, noise_var=data.noise_var, random_state=0).fit_covariance(data.covariance(), P3)
    b = LinearContrastiveHCL(S3, noise_var=data.noise_var, overlap=5.0, random_state=0).fit_covariance(data.covariance(), P3)
    assert b.converged_
    assert b.loss_ > a.lower_bound_  # the penalty is active at the lambda = 0 minimiser


# -- task generators --------------------------------------------------------------------------
def test_factorcl_task_shares_and_finite_mi():
    for share, want in [(0.0, 0.0), (1 / 3, 1 / 3), (0.5, 2 / 3), (1.0, 1.0)]:
        t = factorcl_synthetic(n_samples=500, unique_share=share, noise_sd=1.0, random_state=0)
        assert t.info["unique_share"] == pytest.approx(want)
        assert np.isfinite(t.info["mi_x1x2"]) and t.info["mi_x1x2"] > 0
        assert 0.5 < t.info["bayes_accuracy"] < 1.0
        assert t.train.n_samples + t.val.n_samples + t.test.n_samples == 500
    cov = np.array([[1.0, 0.6], [0.6, 1.0]])
    assert gaussian_mutual_information(cov, 1) == pytest.approx(-0.5 * np.log(1 - 0.36))
    a = factorcl_synthetic(n_samples=300, random_state=1)
    b = factorcl_synthetic(n_samples=300, random_state=1)
    np.testing.assert_array_equal(a.test.Xs[0], b.test.Xs[0])


def test_factorcl_task_is_the_official_generator():
    # no observation noise, latent variance 0.5, x_i = [w_s, w_i] U_i with U_i ~ U[0, 1] (16 x 100),
    # y = 1[mean of the chosen latent coordinates >= 0]
    t = factorcl_synthetic(n_samples=20000, unique_share=1 / 3, random_state=3)
    sp = t.train
    U1, U2 = t.info["mix"]
    assert U1.shape == (16, 100) and U1.min() >= 0 and U1.max() <= 1
    ws, w1, w2 = sp.latents["shared"], sp.latents["unique1"], sp.latents["unique2"]
    np.testing.assert_allclose(sp.Xs[0], np.hstack([ws, w1]) @ U1, atol=1e-12)
    np.testing.assert_allclose(sp.Xs[1], np.hstack([ws, w2]) @ U2, atol=1e-12)
    v = np.var(np.hstack([ws, w1, w2]), axis=0)
    assert abs(v.mean() - 0.5) < 0.01 and np.all(np.abs(v - 0.5) < 0.05)
    ks, ku = t.info["k_shared"], t.info["k_unique"]
    assert (ks, ku) == (4, 1)
    y = (np.hstack([ws[:, :ks], w1[:, :ku], w2[:, :ku]]).mean(1) >= 0).astype(int)
    np.testing.assert_array_equal(sp.y["label"], y)
    assert t.info["noise_sd"] == 0 and t.info["mi_x1x2"] == np.inf and t.info["bayes_accuracy"] == 1.0
    with pytest.raises(ValueError, match="latent_var must be > 0 and noise_sd >= 0"):
        factorcl_synthetic(n_samples=10, latent_var=0.0)


@pytest.mark.parametrize("share", [0.0, 1.0])
def test_factorcl_bayes_accuracy_matches_monte_carlo(share):
    # the Bayes rule 1[a^T E(w | x) >= 0] on fresh draws attains the closed-form accuracy
    t = factorcl_synthetic(n_samples=40000, unique_share=share, noise_sd=1.0, latent_var=0.25, random_state=4)
    U1, U2 = t.info["mix"]
    a = t.info["label_weights"]
    B = np.zeros((200, 22))
    B[:100, :10], B[:100, 10:16] = U1[:10].T, U1[10:].T
    B[100:, :10], B[100:, 16:] = U2[:10].T, U2[10:].T
    S = 0.25 * B @ B.T + np.eye(200)
    coef = np.linalg.solve(S, B @ (0.25 * a))  # a^T E(w | x) = coef^T x
    sp = t.train
    pred = (np.hstack(sp.Xs) @ coef >= 0).astype(int)
    acc = np.mean(pred == sp.y["label"])
    se = np.sqrt(acc * (1 - acc) / sp.n_samples)
    bayes = t.info["bayes_accuracy"]
    assert abs(acc - bayes) < 4 * se
    assert bayes == pytest.approx(factorcl_bayes_accuracy(t.info["mix"], a, 0.25, 1.0))
    assert factorcl_bayes_accuracy(t.info["mix"], a, 0.25, 0.0) == 1.0


def test_trifeature_protocol():
    t = trifeature_vectors(n_pretrain=400, n_train=400, n_val=200, n_test=400, random_state=0)
    pi = t.info["bijection"]
    assert np.all(t.pretrain.y["Syn"] == 1)
    assert np.all(t.pretrain.latents["colour2"][:, 0] == pi[t.pretrain.latents["texture1"][:, 0]])
    syn = t.test.y["Syn"]
    assert 0.4 < syn.mean() < 0.6
    match = t.test.latents["colour2"][:, 0] == pi[t.test.latents["texture1"][:, 0]]
    np.testing.assert_array_equal(match, syn == 1)


def test_trifeature_unbiased_pretraining_same_maps_and_labelled_splits():
    # the official protocol trains R / U representations on an unbiased set: independent attributes
    a = trifeature_vectors(n_pretrain=4000, n_train=300, n_val=100, n_test=300, random_state=7)
    b = trifeature_vectors(n_pretrain=4000, n_train=300, n_val=100, n_test=300, biased_pretrain=False, random_state=7)
    assert a.info["biased_pretrain"] and not b.info["biased_pretrain"]
    for k in ("train", "val", "test"):
        np.testing.assert_array_equal(getattr(a, k).Xs[1], getattr(b, k).Xs[1])
        np.testing.assert_array_equal(getattr(a, k).y["Syn"], getattr(b, k).y["Syn"])
    pi = b.info["bijection"]
    match = b.pretrain.latents["colour2"][:, 0] == pi[b.pretrain.latents["texture1"][:, 0]]
    np.testing.assert_array_equal(match, b.pretrain.y["Syn"] == 1)
    # independent colour_2: P(colour_2 = pi(texture_1)) = 1 / 8 (binomial sd 0.005 at n = 4000)
    assert abs(match.mean() - 1 / 8) < 0.02
    # colour_2 independent of texture_1: the contingency table is flat (chi-square, 49 df; 0.999 quantile 85.4)
    tab = np.zeros((8, 8))
    np.add.at(tab, (b.pretrain.latents["texture1"][:, 0], b.pretrain.latents["colour2"][:, 0]), 1)
    exp = tab.sum(1, keepdims=True) * tab.sum(0, keepdims=True) / tab.sum()
    assert ((tab - exp) ** 2 / exp).sum() < 85.4
    with pytest.raises(ValueError, match="biased_pretrain must be True or False; got 'no'"):
        trifeature_vectors(n_pretrain=10, biased_pretrain="no")


def test_factorcl_task_official_split():
    # the official notebook: 30000 rows, 80 % for training; here 80 / 10 / 10 (train / val / test)
    t = factorcl_synthetic(n_samples=1000, unique_share=1.0, val_fraction=0.1, test_fraction=0.1, random_state=0)
    assert (t.train.n_samples, t.val.n_samples, t.test.n_samples) == (800, 100, 100)
    assert t.pretrain is t.train
    assert t.info["k_shared"] == 0 and t.info["k_unique"] == 3


def test_hierarchical_task_splits():
    t = hierarchical_task(n_pretrain=200, n_train=100, n_val=50, n_test=80, random_state=0)
    assert [s.n_samples for s in (t.pretrain, t.train, t.val, t.test)] == [200, 100, 50, 80]
    assert set(t.test.latents) == set(t.info["structure"].subsets)


# -- packaging: the core never imports torch; the deep subpackage says how to get it ------------
def test_core_does_not_import_torch_and_deep_import_error_is_actionable():
    import subprocess
    import sys

    code = ("import sys; import hcl_stats, hcl_stats.contrastive, hcl_stats.contrastive.linear, "
            "hcl_stats.contrastive.tasks; assert 'torch' not in sys.modules, 'core imported torch'")
    subprocess.run([sys.executable, "-c", code], check=True)
    # the core is imported first (scipy inspects sys.modules["torch"] when it is present)
    for module in ("hcl_stats.contrastive.deep", "hcl_stats.deep"):
        code = ("import sys, hcl_stats; sys.modules['torch'] = None\n"
                f"try:\n    import {module}\nexcept ImportError as e:\n    print(e)\n")
        out = subprocess.run([sys.executable, "-W", "ignore::FutureWarning", "-c", code], check=True,
                             capture_output=True, text=True).stdout
        assert "needs PyTorch" in out and "pip install hcl_stats[deep]" in out, (module, out)


# -- the old import paths and keywords keep working for one release, with a FutureWarning --------
def _fresh_import(name, monkeypatch):
    """Import ``name`` afresh; the module objects (and the parent package's attribute) in place before
    are restored at teardown, so later tests keep seeing the same classes (pickle needs that)."""
    import importlib
    import sys

    parent, _, child = name.rpartition(".")
    if parent in sys.modules and hasattr(sys.modules[parent], child):
        monkeypatch.setattr(sys.modules[parent], child, getattr(sys.modules[parent], child))
    monkeypatch.delitem(sys.modules, name, raising=False)
    return importlib.import_module(name)


def test_old_module_contrastive_tasks_reexports_and_warns(monkeypatch):
    import hcl_stats.contrastive as new

    with pytest.warns(FutureWarning, match=r"hcl_stats\.contrastive_tasks has moved to hcl_stats\.contrastive\.tasks"):
        old = _fresh_import("hcl_stats.contrastive_tasks", monkeypatch)
    for name in old.__all__:
        assert getattr(old, name) is getattr(new, name), name


def test_new_paths_import_without_warnings(monkeypatch):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        for name in ("hcl_stats.contrastive", "hcl_stats.contrastive.linear", "hcl_stats.contrastive.tasks"):
            _fresh_import(name, monkeypatch)
        LinearContrastiveHCL(S3)
        factorcl_synthetic(n_samples=20, random_state=0)


def test_old_keywords_warn_and_map_to_the_new_ones():
    with pytest.warns(FutureWarning, match="'gtol' is deprecated.*use 'tol'") as rec:
        est = LinearContrastiveHCL(S3, gtol=1e-5)
    assert est.tol == 1e-5 and "gtol" not in est.get_params()
    assert rec[0].filename == __file__  # the warning points at the caller's line
    with pytest.raises(ValueError, match="pass either 'tol' or its deprecated spelling 'gtol', not both"):
        LinearContrastiveHCL(S3, tol=1e-3, gtol=1e-5)
    with pytest.raises(TypeError, match="unexpected keyword argument 'gtoll'"):
        LinearContrastiveHCL(S3, gtoll=1e-5)
    for gen, kw in [(factorcl_synthetic, dict(n_samples=30)),
                    (trifeature_vectors, dict(n_pretrain=10, n_train=10, n_val=10, n_test=10)),
                    (hierarchical_task, dict(n_pretrain=10, n_train=10, n_val=10, n_test=10))]:
        with pytest.warns(FutureWarning, match="'rng' is deprecated.*use 'random_state'") as rec:
            a = gen(rng=5, **kw)
        assert rec[0].filename == __file__
        b = gen(random_state=5, **kw)
        np.testing.assert_array_equal(a.test.Xs[0], b.test.Xs[0])
    with pytest.warns(FutureWarning, match="'rng' is deprecated") as rec:
        r = check_contrastive_subspaces(n_features=(6, 7, 8), structure=S3, rng=1, hcl_method="init")
    assert rec[0].filename == __file__ and r.converged


def test_random_state_policy():
    # data generators: fresh entropy by default; the estimator: a fixed start (0) by default
    assert not np.array_equal(factorcl_synthetic(n_samples=30).test.Xs[0], factorcl_synthetic(n_samples=30).test.Xs[0])
    assert LinearContrastiveHCL(S3).random_state == 0
    data = simulate(S3, P3, 300, noise_var=0.5, random_state=9)
    a, b = LinearContrastiveHCL(S3).fit(data.Xs), LinearContrastiveHCL(S3).fit(data.Xs)
    np.testing.assert_array_equal(a.encoder_matrix_, b.encoder_matrix_)
