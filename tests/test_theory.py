"""Theory checks in their quick configurations (tolerances are the checks' defaults, stated in
hcl_stats.theory), the result objects and tables, the registry, and validation messages.

Every check but identifiability runs HCL's default estimator unless told otherwise. Paper mode
fails the downstream floor check (its blocks of one structure are not rotation-aligned across
modalities, docs/method.md section 4); a test below states that finding.
"""
import pytest

from hcl_stats.theory import (CHECKS, FULL_CONFIGS, CheckResult, check_detectability, check_downstream,
                              check_identifiability, check_loading_rate, check_selection, check_signal_noise,
                              format_checks, run_checks)

def _assert_passes(res):
    assert isinstance(res, CheckResult)
    assert res.passed, "\n" + format_checks([res], fmt="text")


def test_identifiability_quick():
    res = check_identifiability()
    _assert_passes(res)
    pop, corr = res.components
    assert pop.estimate < 1e-8 and len(pop.data["structures"]) == 4
    assert any(len(r["n_features"]) == 4 for r in pop.data["structures"])
    assert corr.data["e_inf"] > 0.1                      # correlated latents: the error does not vanish


def test_loading_rate_quick_default_and_paper_mode():
    res = check_loading_rate()                          # |slope + 1/2| <= 0.15
    _assert_passes(res)
    assert res.ci[0] < res.estimate < res.ci[1]
    res = check_loading_rate(method="paper")
    _assert_passes(res)
    assert res.ci[0] < res.estimate < res.ci[1]


def test_detectability_quick():
    _assert_passes(check_detectability())


def test_signal_noise_quick():
    res = check_signal_noise()                          # exponents within 0.15 of the form's
    _assert_passes(res)
    noise, signal = res.components
    assert noise.estimate > 0 and signal.estimate < 0


def test_downstream_quick_default_method():
    res = check_downstream(ns=(1000, 4000, 16000), n_replicates=4)
    _assert_passes(res)


def test_downstream_floor_does_not_fall_for_paper_mode():
    """The documented finding: paper-mode loadings are not aligned across modalities, so the
    errors-in-variables correction is wrong and the floor does not fall with n."""
    res = check_downstream(method="paper", ns=(1000, 4000, 16000), n_replicates=4)
    parts = {c.name.split("/")[-1]: c for c in res.components}
    assert not parts["param_floor_n"].passed


def test_selection_quick_default_method():
    res = check_selection(ms=(50, 200, 800), n_unlabelled=8000, n_replicates=3,
                          response_noise_var=1.0, n_alphas=12)
    _assert_passes(res)


def test_result_rows_and_tables():
    res = check_identifiability(ns=(500, 1000, 2000), n_replicates=2, n_boot=50)
    rows = res.to_rows()
    assert [r["check"] for r in rows] == ["identifiability", "identifiability/population", "identifiability/correlated"]
    assert set(rows[0]) == {"check", "quantity", "estimate", "ci_low", "ci_high", "expected", "passed", "detail"}
    md = format_checks([res])
    assert md.splitlines()[0].startswith("| check | quantity | estimate | 95% CI |") and md.count("\n") == 4
    assert "identifiability/correlated" in str(res)
    # one summary layer: the tables are hcl_stats.summary.Table renderings
    from hcl_stats.summary import Summary
    from hcl_stats.theory import checks_table

    t = checks_table(res)
    assert md == t.as_markdown() and format_checks(res, fmt="text") == t.as_text()
    assert [r[0] for r in t.rows] == [r["check"] for r in rows]
    assert format_checks(res, fmt="html").startswith("<table>") and r"\begin{tabular}" in format_checks(res, fmt="latex")
    s = res.summary()
    assert isinstance(s, Summary) and s.tables[0].rows == t.rows and "Theory check: identifiability" in str(s)
    with pytest.raises(ValueError, match=r"fmt must be one of \('markdown', 'text', 'latex', 'html'\); got 'pdf'"):
        format_checks([res], fmt="pdf")


def test_registry_and_run_checks():
    assert set(CHECKS) == {"identifiability", "loading_rate", "detectability", "signal_noise", "downstream", "selection"}
    assert set(FULL_CONFIGS) <= set(CHECKS)
    out = run_checks(["detectability"], detectability=dict(ns=(500,), noise_vars=(0.5, 2.0), n_replicates=1,
                                                          n_boot=20))
    assert len(out) == 1 and out[0].name == "detectability" and out[0].data["seconds"] > 0
    with pytest.raises(ValueError, match=r"names must be keys of CHECKS .*; got unknown \['rates'\]"):
        run_checks(["rates"])
    with pytest.raises(ValueError, match=r"overrides must be keyed by check names .*; got unknown \['foo'\]"):
        run_checks(["detectability"], foo={})


def test_validation_messages():
    with pytest.raises(ValueError, match=r"method must be one of the registered estimation methods .*; got 'nope'"):
        check_loading_rate(method="nope")
    with pytest.raises(ValueError, match=r"ns must have at least 2 values; got 1"):
        check_loading_rate(ns=(1000,))
    with pytest.raises(ValueError, match="n_replicates must be an integer >= 1; got 0"):
        check_downstream(n_replicates=0)
    with pytest.raises(ValueError, match="representation must be 'paper' or 'posterior'; got 'avg'"):
        check_selection(representation="avg")
    with pytest.raises(ValueError, match=r"latent_corr must be in \(-1, 1\) and non-zero; got 0.0"):
        check_identifiability(latent_corr=0.0)


def test_seed_keyword_is_renamed_random_state():
    kw = dict(ns=(500, 1000, 2000), n_replicates=2, n_boot=20)
    with pytest.warns(FutureWarning,
                      match="check_identifiability: the keyword 'seed' is deprecated .*; use 'random_state'") as rec:
        old = check_identifiability(seed=3, **kw)
    assert rec[0].filename == __file__
    new = check_identifiability(random_state=3, **kw)
    assert old.to_rows() == new.to_rows()
    assert check_identifiability(random_state=4, **kw).to_rows() != new.to_rows()  # the seed is used
    with pytest.raises(ValueError, match="pass either 'random_state' or its deprecated spelling 'seed', not both"):
        check_identifiability(random_state=1, seed=2, **kw)
    with pytest.raises(TypeError, match="check_identifiability got an unexpected keyword argument 'sed'"):
        check_identifiability(sed=2, **kw)
