"""Deep contrastive models: determinism, training progress, shapes, estimator contract (tiny models)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hcl_stats import Structure  # noqa: E402
from hcl_stats.contrastive_tasks import factorcl_synthetic, hierarchical_task, trifeature_vectors  # noqa: E402
from hcl_stats.deep import COrAL, Cross, CrossSelf, DeepHCL, FactorCL  # noqa: E402
from hcl_stats.deep._train import ConcatCritic, augment, nt_xent  # noqa: E402
from hcl_stats.exceptions import NotFittedError  # noqa: E402

pytestmark = pytest.mark.deep

TINY = dict(epochs=2, batch_size=32, patience=10)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)


@pytest.fixture(scope="module")
def bimodal():
    t = trifeature_vectors(n_pretrain=128, n_train=40, n_val=40, n_test=40, n_classes=4, n_features=8, rng=0)
    return t


@pytest.fixture(scope="module")
def labelled():
    return factorcl_synthetic(n_samples=300, n_features=12, unique_share=0.5, rng=0)


MODELS = {
    "cross": lambda **kw: Cross(hidden=(16,), dim=8, proj_dim=8, **kw),
    "cross_self": lambda **kw: CrossSelf(hidden=(16,), dim=8, proj_dim=8, **kw),
    "factorcl_ssl": lambda **kw: FactorCL("ssl", hidden=(16,), dim=8, critic_hidden=8, **kw),
    "coral": lambda **kw: COrAL(d=8, heads=2, head_hidden=(16,), head_out=8, **kw),
    "coral_hinge_schedule": lambda **kw: COrAL(d=8, heads=2, head_hidden=(16,), head_out=8, orth="hinge", mask="schedule", **kw),
    "hcl_authors": lambda **kw: DeepHCL(rank=2, hidden=(16,), **kw),
    "hcl_spectral": lambda **kw: DeepHCL(rank=2, hidden=(16,), loss="spectral", **kw),
}
DIMS = {"cross": 16, "cross_self": 16, "factorcl_ssl": 80, "coral": 16, "coral_hinge_schedule": 16,
        "hcl_authors": 6, "hcl_spectral": 6}


@pytest.mark.parametrize("name", list(MODELS))
def test_same_seed_same_weights_and_shapes(name, bimodal):
    Xs = bimodal.pretrain.Xs
    a = MODELS[name](random_state=3, **TINY).fit(Xs)
    b = MODELS[name](random_state=3, **TINY).fit(Xs)
    np.testing.assert_array_equal(a.state_vector(), b.state_vector())
    np.testing.assert_array_equal(a.history_["train_loss"], b.history_["train_loss"])
    Z = a.transform(bimodal.test.Xs)
    assert Z.shape == (40, DIMS[name]) and Z.dtype == np.float64 and np.all(np.isfinite(Z))


def test_different_seed_different_weights(bimodal):
    a = MODELS["coral"](random_state=3, **TINY).fit(bimodal.pretrain.Xs)
    c = MODELS["coral"](random_state=4, **TINY).fit(bimodal.pretrain.Xs)
    assert not np.array_equal(a.state_vector(), c.state_vector())


def test_factorcl_supervised_deterministic_and_shapes(labelled):
    sp = labelled.pretrain
    kw = dict(hidden=(16,), dim=8, critic_hidden=8, random_state=0, **TINY)
    a = FactorCL(**kw).fit(sp.Xs, sp.y["label"])
    b = FactorCL(**kw).fit(sp.Xs, sp.y["label"])
    np.testing.assert_array_equal(a.state_vector(), b.state_vector())
    assert a.transform(labelled.test.Xs).shape == (labelled.test.n_samples, 80)
    with pytest.raises(ValueError, match="FactorCL is supervised: fit needs labels y"):
        FactorCL(**kw).fit(sp.Xs)


@pytest.mark.parametrize("name", ["cross", "cross_self", "factorcl_ssl", "coral", "hcl_authors", "hcl_spectral"])
def test_training_loss_decreases(name, bimodal):
    m = MODELS[name](random_state=0, epochs=6, batch_size=32, patience=100, lr=3e-3).fit(bimodal.pretrain.Xs)
    tl = m.history_["train_loss"]
    assert len(tl) == 6
    assert tl[-1] < tl[0]


def test_factorcl_supervised_loss_decreases(labelled):
    sp = labelled.pretrain
    m = FactorCL(hidden=(16,), dim=8, critic_hidden=8, random_state=0, epochs=8, batch_size=32, patience=100,
                 lr=3e-3).fit(sp.Xs, sp.y["label"])
    assert m.history_["train_loss"][-1] < m.history_["train_loss"][0]


def test_early_stopping_keeps_best_epoch(bimodal):
    m = Cross(hidden=(16,), dim=8, proj_dim=8, random_state=0, epochs=40, batch_size=32, patience=1, lr=3e-2)
    m.fit(bimodal.pretrain.Xs, Xs_val=bimodal.val.Xs)
    assert m.n_epochs_ <= 40
    assert m.best_val_loss_ == pytest.approx(np.min(m.history_["val_loss"]))


def test_three_modalities_hcl_coral_cross():
    t = hierarchical_task(Structure.full(3, 1), n_features=(5, 6, 7), n_pretrain=120, n_train=10, n_val=10,
                          n_test=30, rng=0)
    s = t.info["structure"]
    for m, dim in [(DeepHCL(s, hidden=(8,), **TINY), 7), (COrAL(d=8, heads=2, head_hidden=(8,), head_out=8, **TINY), 8 + 3 * 4),
                   (Cross(hidden=(8,), dim=4, proj_dim=4, **TINY), 12)]:
        assert m.fit(t.pretrain.Xs).transform(t.test.Xs).shape == (30, dim)
    with pytest.raises(ValueError, match="FactorCL is bimodal"):
        FactorCL("ssl", **TINY).fit(t.pretrain.Xs)


def test_contract_and_validation(bimodal):
    m = Cross(**TINY)
    with pytest.raises(NotFittedError):
        m.transform(bimodal.test.Xs)
    with pytest.raises(ValueError, match="The 'tau' parameter of Cross must be a float in"):
        Cross(tau=0.0).fit(bimodal.pretrain.Xs)
    with pytest.raises(ValueError, match="The 'd' parameter of COrAL must be divisible by 'heads'"):
        COrAL(d=10, heads=4, **TINY).fit(bimodal.pretrain.Xs)
    assert Cross(dim=5).get_params()["dim"] == 5


# -- loss pieces ------------------------------------------------------------------------------
def test_infonce_bound_and_club():
    g = torch.Generator().manual_seed(0)
    c = ConcatCritic(3, 3, hidden=8)
    a = torch.randn(50, 3, generator=g)
    with torch.no_grad():
        assert float(c.infonce(a, a)) <= np.log(50) + 1e-6
        # a critic that is a perfect matcher attains the log N ceiling
        c.scores = lambda x, y: -1e4 * (x[None, :, :] - y[:, None, :]).pow(2).sum(-1)
        assert float(c.infonce(a, a)) == pytest.approx(np.log(50), abs=1e-3)
        assert float(c.club(a, a)) > 0


def test_nt_xent_prefers_matching_views():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(32, 8, generator=g)
    assert float(nt_xent(z, z + 0.01 * torch.randn(32, 8, generator=g))) < float(nt_xent(z, torch.randn(32, 8, generator=g)))
    x = torch.ones(4, 10)
    a1 = augment(x, torch.Generator().manual_seed(2))
    a2 = augment(x, torch.Generator().manual_seed(2))
    assert torch.equal(a1, a2)
