"""Deep contrastive models: determinism, training progress, shapes, estimator contract (tiny models)."""
import numpy as np
import pytest

torch = pytest.importorskip("torch")

from hcl_stats import Structure  # noqa: E402
from hcl_stats.contrastive.deep import COrAL, CoMM, Cross, CrossSelf, DeepHCL, FactorCL, SupCon  # noqa: E402
from hcl_stats.contrastive.deep.coral import VectorTokenizer, _sincos_embedding, mask_tokens  # noqa: E402
from hcl_stats.contrastive.deep.training import ConcatCritic, augment, nt_xent, supcon_loss, torch_seed  # noqa: E402
from hcl_stats.contrastive.tasks import factorcl_synthetic, hierarchical_task, trifeature_vectors  # noqa: E402
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
    t = trifeature_vectors(n_pretrain=128, n_train=40, n_val=40, n_test=40, n_classes=4, n_features=8, random_state=0)
    return t


@pytest.fixture(scope="module")
def labelled():
    return factorcl_synthetic(n_samples=300, n_features=12, unique_share=0.5, random_state=0)


MODELS = {
    "cross": lambda **kw: Cross(hidden=(16,), n_components=8, proj_dim=8, **kw),
    "cross_self": lambda **kw: CrossSelf(hidden=(16,), n_components=8, proj_dim=8, **kw),
    "factorcl_ssl": lambda **kw: FactorCL("ssl", hidden=(16,), n_components=8, critic_hidden=8, **kw),
    "coral": lambda **kw: COrAL(d=8, heads=2, enc_hidden=(16,), n_tokens=3, token_dim=4, head_hidden=(16,), head_out=8, **kw),
    "coral_hinge_schedule": lambda **kw: COrAL(d=8, heads=2, enc_hidden=(16,), n_tokens=3, token_dim=4, head_hidden=(16,),
                                               head_out=8, orth="hinge", mask="schedule", **kw),
    "comm": lambda **kw: CoMM(d=8, heads=2, enc_hidden=(16,), n_tokens=3, token_dim=4, head_hidden=(16,), head_out=8, **kw),
    "hcl_authors": lambda **kw: DeepHCL(n_components=2, hidden=(16,), **kw),
    "hcl_spectral": lambda **kw: DeepHCL(n_components=2, hidden=(16,), loss="spectral", **kw),
}
DIMS = {"cross": 16, "cross_self": 16, "factorcl_ssl": 16, "coral": 16, "coral_hinge_schedule": 16, "comm": 8,
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
    kw = dict(hidden=(16,), n_components=8, critic_hidden=8, random_state=0, **TINY)
    a = FactorCL(**kw).fit(sp.Xs, sp.y["label"])
    b = FactorCL(**kw).fit(sp.Xs, sp.y["label"])
    np.testing.assert_array_equal(a.state_vector(), b.state_vector())
    # official get_embedding: the backbone outputs of both modalities; "heads": the 10 heads
    assert a.transform(labelled.test.Xs).shape == (labelled.test.n_samples, 16)
    h = FactorCL(embedding="heads", **kw).fit(sp.Xs, sp.y["label"])
    np.testing.assert_array_equal(h.state_vector(), a.state_vector())
    Zh = h.transform(labelled.test.Xs)
    assert Zh.shape == (labelled.test.n_samples, 80)
    f = a.factors(labelled.test.Xs)
    assert {k: v.shape[1] for k, v in f.items()} == {"backbone": 16, "ZS1": 16, "ZS2": 16, "ZU1": 24, "ZU2": 24}
    np.testing.assert_allclose(f["backbone"], a.transform(labelled.test.Xs))
    np.testing.assert_allclose(np.hstack([f["ZS1"], f["ZU1"]]), Zh[:, :40], rtol=1e-6)
    with pytest.raises(ValueError, match="FactorCL is supervised: fit needs labels y"):
        FactorCL(**kw).fit(sp.Xs)


def test_factorcl_ablations(labelled):
    sp = labelled.pretrain
    kw = dict(hidden=(16,), n_components=8, critic_hidden=8, random_state=0, epochs=2, batch_size=32)
    full = FactorCL(**kw).fit(sp.Xs, sp.y["label"])
    no_ub = FactorCL(upper_bounds=False, **kw).fit(sp.Xs, sp.y["label"])
    # without upper bounds the CLUB critics get no inner optimiser and no gradient: initial weights kept
    assert no_ub._inner_opt is None and full._inner_opt is not None
    init = FactorCL(upper_bounds=False, **kw)
    init.epochs = 1
    init.lr = 1e-12
    w0 = init.fit(sp.Xs, sp.y["label"]).module_.club_x1x2.fa.weight.detach().clone()
    torch.testing.assert_close(no_ub.module_.club_x1x2.fa.weight.detach(), w0)
    assert not torch.allclose(full.module_.club_x1x2.fa.weight.detach(), w0)
    assert not np.array_equal(full.state_vector(), no_ub.state_vector())
    one = FactorCL(factorized=False, **kw).fit(sp.Xs, sp.y["label"])
    f = one.factors(labelled.test.Xs)
    # no factorisation: one head per modality, so Z_S = [z, z] and Z_U = [z, z, z]
    np.testing.assert_array_equal(f["ZS1"][:, :8], f["ZS1"][:, 8:])
    np.testing.assert_array_equal(f["ZU2"][:, :8], f["ZU2"][:, 16:])
    g = full.factors(labelled.test.Xs)
    assert not np.allclose(g["ZS1"][:, :8], g["ZS1"][:, 8:])


def test_factorcl_conditional_critics_follow_the_official_code(labelled):
    # official FactorCLSUP: f([z1, y_onehot], z2); FactorCLSSL: f([z1, z1'], [z2, z2']) (each modality
    # joined with its own augmented view)
    sp = labelled.pretrain
    kw = dict(hidden=(16,), n_components=8, critic_hidden=8, random_state=0, epochs=1, batch_size=32)
    sup = FactorCL(**kw).fit(sp.Xs, sp.y["label"])
    ssl = FactorCL("ssl", **kw).fit(sp.Xs)
    for crit in ("nce_x1x2_cond", "club_x1x2_cond"):
        c_sup, c_ssl = getattr(sup.module_, crit), getattr(ssl.module_, crit)
        assert (c_sup.fa.in_features, c_sup.fb.in_features) == (8 + 2, 8)
        assert (c_ssl.fa.in_features, c_ssl.fb.in_features) == (16, 16)
    f = {h: torch.full((4, 8), float(i)) for i, h in enumerate(("s_nce", "s_club_cond", "u_nce_y", "u_club", "u_nce_cond"))}
    c = {h: v + 100 for h, v in f.items()}
    a, b = ssl._cond_pair(f, {h: v + 10 for h, v in f.items()}, c, {h: v + 200 for h, v in f.items()}, "u_nce_cond")
    assert torch.equal(a, torch.cat([f["u_nce_cond"], c["u_nce_cond"]], 1))
    assert torch.equal(b, torch.cat([f["u_nce_cond"] + 10, f["u_nce_cond"] + 200], 1))
    a, b = sup._cond_pair(f, {h: v + 10 for h, v in f.items()}, c, c, "s_club_cond")
    assert a.shape == (4, 16) and torch.equal(b, f["s_club_cond"] + 10)


def test_fixed_epochs_no_validation_split_and_monitor(labelled):
    sp = labelled.pretrain
    calls = []

    def monitor(model, epoch, step):
        calls.append((epoch, step))
        return float(model.transform(sp.Xs[:1] + sp.Xs[1:]).std())

    m = FactorCL(hidden=(16,), n_components=8, critic_hidden=8, epochs=5, batch_size=32, random_state=0)
    assert m.patience is None and m.optimizer == "adam" and m.lr == 1e-4  # the official training by default
    m.fit(sp.Xs, sp.y["label"], monitor=monitor, monitor_every=2)
    nb = sp.n_samples // 32  # all the rows are used: no validation split without early stopping
    assert m.n_epochs_ == 5 and m.n_steps_ == 5 * nb
    assert len(m.history_["val_loss"]) == 0 and len(m.history_["train_loss"]) == 5
    assert calls == [(0, 0), (2, 2 * nb), (4, 4 * nb), (5, 5 * nb)]
    assert [e for e, _, _ in m.history_["monitor"]] == [0, 2, 4, 5]
    # the monitor does not change the training
    m2 = FactorCL(hidden=(16,), n_components=8, critic_hidden=8, epochs=5, batch_size=32, random_state=0).fit(sp.Xs, sp.y["label"])
    np.testing.assert_array_equal(m.state_vector(), m2.state_vector())


def test_supcon_fits_and_reduces_to_nt_xent():
    g = torch.Generator().manual_seed(5)
    z1, z2 = torch.randn(16, 4, generator=g), torch.randn(16, 4, generator=g)
    # with one class per sample the only positive is the other view: SupCon = NT-Xent at tau = 0.07
    assert float(supcon_loss(z1, z2, torch.arange(16), 0.07)) == pytest.approx(float(nt_xent(z1, z2, 0.07)), rel=1e-5)
    y = torch.arange(16) % 2
    # views that agree with their class score better than views that do not
    c = torch.stack([torch.tensor([1.0, 0, 0, 0]), torch.tensor([0, 1.0, 0, 0])])[y]
    assert float(supcon_loss(c, c, y)) < float(supcon_loss(c, c[torch.randperm(16, generator=g)], y))
    t = factorcl_synthetic(n_samples=300, n_features=12, unique_share=1.0, random_state=2)
    m = SupCon(hidden=(16,), n_components=8, proj_dim=8, epochs=3, batch_size=32, patience=None, lr=3e-3, random_state=0)
    m.fit(t.pretrain.Xs, t.pretrain.y["label"])
    assert m.history_["train_loss"][-1] < m.history_["train_loss"][0]
    assert m.transform(t.test.Xs).shape == (t.test.n_samples, 16)
    with pytest.raises(ValueError, match="SupCon is supervised: fit needs labels y"):
        SupCon(epochs=1).fit(t.pretrain.Xs)


def test_coral_tokens_see_the_whole_vector_and_masking_zeroes_tokens():
    torch.manual_seed(0)  # the tokenizer draws from the global generator: fixed, whatever ran before
    tok = VectorTokenizer(6, [16], n_tokens=4, token_dim=3, d=8)
    x = torch.randn(64, 6, generator=torch.Generator().manual_seed(0))
    x2 = x.clone()
    x2[:, 0] += 1.0
    with torch.no_grad():
        d = (tok(x2) - tok(x)).abs().amax(dim=(0, 2))
    assert d.shape == (4,) and torch.all(d > 0)  # every token depends on feature 0 (an encoder precedes the tokens)
    t = torch.randn(50, 4, 8, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(2)
    assert torch.equal(mask_tokens(t, 0.0, g), t)
    assert torch.count_nonzero(mask_tokens(t, 1.0, g)) == 0
    kept = (mask_tokens(t, 0.75, g).abs().sum(-1) > 0).float().mean()
    assert 0.15 < float(kept) < 0.35


def test_coral_sincos_position_embeddings_are_fixed_and_follow_the_formula(bimodal):
    T, d = 3, 8
    pe = _sincos_embedding(T, d)
    expect = np.zeros((T, d))
    for t in range(T):
        for i in range(d // 2):
            w = 10000.0 ** (-2 * i / d)
            expect[t, 2 * i], expect[t, 2 * i + 1] = np.sin(t * w), np.cos(t * w)
    np.testing.assert_allclose(pe[0].numpy(), expect, rtol=1e-5, atol=1e-6)
    assert _sincos_embedding(4, 5).shape == (1, 4, 5)  # odd width
    m = MODELS["coral"](pos_embedding="sincos", random_state=0, epochs=1, batch_size=32).fit(bimodal.pretrain.Xs)
    params = {id(p) for p in m.module_.parameters()}
    for tok in list(m.module_.tok_s) + list(m.module_.tok_u):
        assert id(tok.pos) not in params and not tok.pos.requires_grad  # a buffer: not trained
        assert torch.equal(tok.pos, pe)  # unchanged by training
    learned = MODELS["coral"](random_state=0, epochs=1, batch_size=32).fit(bimodal.pretrain.Xs)
    assert all(isinstance(tok.pos, torch.nn.Parameter) for tok in learned.module_.tok_s)  # the default


def test_coral_decay_1d_false_exempts_every_1d_parameter(bimodal):
    Xs = bimodal.pretrain.Xs
    m = MODELS["coral"](decay_1d=False, weight_decay=0.1, random_state=0, epochs=1, batch_size=32).fit(Xs)
    one_d = {id(p) for p in m.module_.parameters() if p.ndim < 2}
    groups = m._inner_opt.param_groups
    assert one_d and {id(p) for g in groups for p in g["params"]} == one_d
    assert all(g["weight_decay"] == 0.0 for g in groups)
    assert MODELS["coral"](random_state=0, epochs=1)._inner_parameters(m.module_) == []  # default: one optimizer
    # with no weight decay at all, the split optimizer is the same update as the single one
    a = MODELS["coral"](decay_1d=False, weight_decay=0.0, random_state=0, epochs=1, batch_size=32).fit(Xs)
    b = MODELS["coral"](decay_1d=True, weight_decay=0.0, random_state=0, epochs=1, batch_size=32).fit(Xs)
    np.testing.assert_allclose(a.state_vector(), b.state_vector(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("kw, msg", [
    (dict(pos_embedding="fixed"), r"The 'pos_embedding' parameter of COrAL must be one of \{'learned', 'sincos'\}\. Got 'fixed'"),
    (dict(decay_1d="False"), r"The 'decay_1d' parameter of COrAL must be a bool\. Got 'False'"),
    (dict(decay_1d=0), r"The 'decay_1d' parameter of COrAL must be a bool\. Got 0"),
])
def test_coral_new_options_are_validated(kw, msg, bimodal):
    with pytest.raises(ValueError, match=msg):
        MODELS["coral"](epochs=1, **kw).fit(bimodal.pretrain.Xs)
    with pytest.raises(ValueError, match=r"The 'pos_embedding' parameter of VectorTokenizer must be one of .*Got 'fixed'"):
        VectorTokenizer(6, [16], n_tokens=4, token_dim=3, d=8, pos_embedding="fixed")


def test_coral_follows_the_official_initialisation_and_loss_weights(bimodal):
    # official main_trifeature.py: CoralLoss(temperature=0.1, ortho_weights=1), static masking ratio 0.75,
    # AdamW lr 1e-4, weight decay 1e-3, batch 64, 100 epochs; MMFusion deep-copies the shared encoders
    # for the unique path; FusionTransformer_new.initialize sets the attention block's weights
    m = COrAL()
    assert (m.tau, m.lam, m.orth, m.mask, m.mask_ratio) == (0.1, 1.0, "squared", "static", 0.75)
    assert (m.lr, m.weight_decay, m.optimizer, m.batch_size, m.epochs, m.patience) == (1e-4, 1e-3, "adamw", 64, 100, None)
    torch.manual_seed(0)
    d = 64
    net = COrAL(d=d)._build((24, 24), 0)
    for a, b in zip(net.tok_s.parameters(), net.tok_u.parameters()):
        assert a is not b and torch.equal(a, b)  # same initial weights, separate parameters
    blk = net.fusion
    for w, sd in ((blk.attn.in_proj_weight, d ** -0.5), (blk.attn.out_proj.weight, (2 * d) ** -0.5),
                  (blk.fc1.weight, (2 * d) ** -0.5), (blk.fc2.weight, (2 * d) ** -0.5)):
        assert abs(float(w.detach().std()) / sd - 1) < 0.05, (w.shape, sd)
    # the loss: NT-Xent(fusion) + NT-Xent(unique 1) + NT-Xent(unique 2) + lam * (6 squared-cosine terms)
    small = COrAL(d=8, heads=2, enc_hidden=(16,), n_tokens=3, token_dim=4, head_hidden=(16,), head_out=8, lam=0.0,
                  random_state=0, epochs=1, batch_size=32).fit(bimodal.pretrain.Xs)
    xs = [torch.as_tensor(X[:32], dtype=torch.float32) for X in bimodal.pretrain.Xs]
    small.module_.eval()
    with torch.no_grad():
        l0 = float(small._loss(small.module_, xs, None, torch.Generator().manual_seed(5), 0))
        small.lam = 2.5
        l1 = float(small._loss(small.module_, xs, None, torch.Generator().manual_seed(5), 0))
        small.lam = 0.0
    pen = (l1 - l0) / 2.5
    assert 0 < pen <= 6.0  # six mean squared cosines, each in [0, 1]


@pytest.mark.parametrize("name", ["cross", "cross_self", "factorcl_ssl", "coral", "comm", "hcl_authors", "hcl_spectral"])
def test_training_loss_decreases(name, bimodal):
    m = MODELS[name](random_state=0, epochs=6, batch_size=32, patience=100, lr=3e-3).fit(bimodal.pretrain.Xs)
    tl = m.history_["train_loss"]
    assert len(tl) == 6
    assert tl[-1] < tl[0]


def test_factorcl_supervised_loss_decreases(labelled):
    sp = labelled.pretrain
    m = FactorCL(hidden=(16,), n_components=8, critic_hidden=8, random_state=0, epochs=8, batch_size=32, patience=100,
                 lr=3e-3).fit(sp.Xs, sp.y["label"])
    assert m.history_["train_loss"][-1] < m.history_["train_loss"][0]


def test_early_stopping_keeps_best_epoch(bimodal):
    m = Cross(hidden=(16,), n_components=8, proj_dim=8, random_state=0, epochs=40, batch_size=32, patience=1, lr=3e-2)
    m.fit(bimodal.pretrain.Xs, Xs_val=bimodal.val.Xs)
    vl = m.history_["val_loss"]
    # it stopped early: one epoch (patience=1) without improvement after the best one, then stop
    assert m.n_epochs_ < 40 and len(vl) == m.n_epochs_
    assert np.argmin(vl) == m.n_epochs_ - 2 and vl[-1] >= vl[-2]
    assert m.best_val_loss_ == pytest.approx(np.min(vl))
    # the weights kept are those of the best epoch: their validation loss is the best one, not the last
    xv = m._prepare(bimodal.val.Xs)
    assert m._evaluate(m.module_, xv, None, 0) == pytest.approx(m.best_val_loss_, rel=1e-6)
    assert m._evaluate(m.module_, xv, None, 0) != pytest.approx(vl[-1], rel=1e-6)


def test_three_modalities_hcl_coral_cross():
    t = hierarchical_task(Structure.full(3, 1), n_features=(5, 6, 7), n_pretrain=120, n_train=10, n_val=10,
                          n_test=30, random_state=0)
    s = t.info["structure"]
    for m, dim in [(DeepHCL(s, hidden=(8,), **TINY), 7),
                   (COrAL(d=8, heads=2, enc_hidden=(8,), n_tokens=2, token_dim=4, head_hidden=(8,), head_out=8, **TINY), 8 + 3 * 4),
                   (Cross(hidden=(8,), n_components=4, proj_dim=4, **TINY), 12)]:
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
    # DeepHCL: n_components sets the rank of every subset only without a structure; never ignored silently
    with pytest.raises(ValueError, match="The 'n_components' parameter of DeepHCL must be None when a structure is given"):
        DeepHCL(Structure.full(2, 1), n_components=2, **TINY).fit(bimodal.pretrain.Xs)
    assert DeepHCL(hidden=(8,), **TINY).fit(bimodal.pretrain.Xs).structure_ == Structure.full(2, 4)
    with pytest.raises(ValueError, match="Xs has 2 modalities but the structure of DeepHCL has n_modalities=3"):
        DeepHCL(Structure.full(3, 1), **TINY).fit(bimodal.pretrain.Xs)
    assert Cross(n_components=5).get_params()["n_components"] == 5


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


# -- glossary: n_components and random_state; the old names keep working with a FutureWarning ------
@pytest.mark.parametrize("cls, old, kw", [(Cross, "dim", {}), (CrossSelf, "dim", {}), (SupCon, "dim", {}),
                                          (FactorCL, "dim", {}), (DeepHCL, "rank", {})])
def test_old_keywords_warn_and_map_to_n_components(cls, old, kw):
    with pytest.warns(FutureWarning, match=f"'{old}' is deprecated.*use 'n_components'") as rec:
        m = cls(**{old: 3}, **kw)
    assert rec[0].filename == __file__
    p = m.get_params()
    assert p["n_components"] == 3 and old not in p
    with pytest.raises(ValueError, match=f"pass either 'n_components' or its deprecated spelling '{old}'"):
        cls(n_components=5, **{old: 3})


def test_random_state_accepts_generator_and_none(bimodal):
    Xs = bimodal.pretrain.Xs
    a = MODELS["cross"](random_state=np.random.default_rng(7), **TINY).fit(Xs)
    b = MODELS["cross"](random_state=a.seed_, **TINY).fit(Xs)
    np.testing.assert_array_equal(a.state_vector(), b.state_vector())  # the drawn seed reproduces the fit
    assert torch_seed(np.random.default_rng(7)) == a.seed_ and torch_seed(5) == 5
    assert isinstance(torch_seed(None), int)
    with pytest.raises(ValueError, match="The 'random_state' parameter of Cross must be"):
        MODELS["cross"](random_state=-1, **TINY).fit(Xs)


def test_old_module_paths_reexport_and_warn():
    import importlib
    import sys

    import hcl_stats.contrastive.deep as new

    for old, target in [("hcl_stats.deep", "hcl_stats.contrastive.deep"),
                        ("hcl_stats.deep._train", "hcl_stats.contrastive.deep.training"),
                        ("hcl_stats.deep.cross", "hcl_stats.contrastive.deep.cross"),
                        ("hcl_stats.deep.coral", "hcl_stats.contrastive.deep.coral"),
                        ("hcl_stats.deep.factorcl", "hcl_stats.contrastive.deep.factorcl"),
                        ("hcl_stats.deep.hcl", "hcl_stats.contrastive.deep.hcl")]:
        sys.modules.pop(old, None)
        with pytest.warns(FutureWarning, match=f"{old} has moved to {target}"):
            mod = importlib.import_module(old)
        target_mod = importlib.import_module(target)
        for name in mod.__all__:
            assert getattr(mod, name) is getattr(target_mod, name), (old, name)
    assert sys.modules["hcl_stats.deep"].DeepHCL is new.DeepHCL
    assert sys.modules["hcl_stats.deep.coral"]._mask_tokens is mask_tokens
