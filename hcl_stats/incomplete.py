"""Incomplete data: NaN marks a missing entry, a sample may miss whole modalities.

- :func:`check_incomplete` validates incomplete ``Xs`` (all-NaN samples, features never or once
  observed, features constant over their observed values are errors naming the modality) and
  returns a :class:`MissingReport` (how much is missing per modality; ``HCL.summary`` prints it).
- :func:`select_structure_incomplete`: structure selection on incomplete data by an
  available-case design (valid when entries are missing completely at random); what
  :func:`hcl_stats.select_structure` runs when ``Xs`` holds NaN.
- The fit itself is :func:`hcl_stats.estimation.missing.fit_missing` (EM over the observed
  entries, valid when entries are missing at random).

Missing completely at random (MCAR): whether an entry is observed is independent of all values,
observed or not. Missing at random (MAR): it may depend on observed values, not on the missing
ones. The EM fit needs MAR; the available-case selection needs MCAR (each of its tests uses the
rows observing the modalities it involves, which are a random subset of the samples only under
MCAR).
"""
from __future__ import annotations

import itertools
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import linalg as sla

from ._validation import check_Xs, user_stacklevel
from .exceptions import DataWarning, IdentifiabilityWarning
from .summary import Summary, Table

__all__ = ["MissingReport", "IncompleteStats", "check_incomplete", "missing_report", "has_missing",
           "incomplete_stats", "select_structure_incomplete", "check_coobserved"]


def has_missing(Xs) -> bool:
    """True when some array of the list ``Xs`` holds a NaN (anything else is left to the checks)."""
    if not isinstance(Xs, (list, tuple)):
        return False
    for X in Xs:
        try:
            a = np.asarray(X)
        except Exception:  # ragged etc.: the regular checks report it
            return False
        if a.dtype.kind == "f" and np.isnan(a).any():
            return True
    return False


@dataclass(frozen=True)
class MissingReport:
    """How much of each modality is missing.

    Attributes
    ----------
    n_samples : int
    n_features : tuple of int
    entry_fraction : ndarray (n_modalities,), share of the modality's entries that are NaN
    n_absent : ndarray (n_modalities,), samples missing the whole modality
    n_partial : ndarray (n_modalities,), samples with some but not all of the modality's features
    n_complete : int, samples with no missing entry
    n_patterns : int, distinct missingness patterns (sets of observed features) over the samples
    co_observed : ndarray (n_modalities, n_modalities), samples observing some feature of both
    names : tuple of str
    """

    n_samples: int
    n_features: tuple
    entry_fraction: np.ndarray
    n_absent: np.ndarray
    n_partial: np.ndarray
    n_complete: int
    n_patterns: int
    co_observed: np.ndarray
    names: tuple

    @property
    def any_missing(self) -> bool:
        return bool(np.any(self.entry_fraction > 0))

    def line(self) -> str:
        """One line for a summary: per modality, the share of missing entries and the samples
        without the modality (and with part of it)."""
        if not self.any_missing:
            return "none"
        parts = []
        for m, name in enumerate(self.names):
            txt = f"{name}: {100 * self.entry_fraction[m]:.1f}% of entries"
            extra = []
            if self.n_absent[m]:
                extra.append(f"{int(self.n_absent[m])} samples without it")
            if self.n_partial[m]:
                extra.append(f"{int(self.n_partial[m])} partly observed")
            if extra:
                txt += " (" + ", ".join(extra) + ")"
            parts.append(txt)
        return "; ".join(parts) + f"; {self.n_complete} of {self.n_samples} samples complete, {self.n_patterns} patterns"

    def summary(self) -> Summary:
        """Per modality: features, missing entries, samples without it and partly observed;
        the samples observing some feature of two modalities.

        Returns
        -------
        hcl_stats.summary.Summary
        """
        info = [("Samples", str(self.n_samples)), ("Complete samples", str(self.n_complete)),
                ("Missingness patterns", str(self.n_patterns))]
        rows = [[name, str(self.n_features[m]), f"{100 * self.entry_fraction[m]:.1f}%", str(int(self.n_absent[m])),
                 str(int(self.n_partial[m]))] for m, name in enumerate(self.names)]
        t1 = Table(["modality", "features", "missing entries", "samples without it", "partly observed"], rows,
                   title="Missing per modality", align="l" + "r" * 4)
        co = np.asarray(self.co_observed)
        t2 = Table(["co-observed"] + list(self.names),
                   [[a] + [str(int(v)) for v in co[m]] for m, a in enumerate(self.names)],
                   title="Samples observing some feature of both modalities", align="l" + "r" * len(self.names))
        return Summary("Missing data", info, tables=[t1, t2])

    def __str__(self):
        return "Missing per modality: " + self.line()


@dataclass(frozen=True)
class IncompleteStats:
    """What :meth:`hcl_stats.HCL.fit` reads from incomplete data before fitting: available-case
    means (p,) and feature variances (p,) (each from the samples observing the feature), the
    number of samples and the feature counts. ``cov`` is None: no p x p statistic is formed."""

    mean: np.ndarray
    feature_var: np.ndarray
    n_samples: int
    n_features: tuple
    cov: None = None


def incomplete_stats(Xs) -> IncompleteStats:
    """:class:`IncompleteStats` of checked incomplete ``Xs`` (NaN = missing)."""
    X = np.hstack(Xs)
    O = ~np.isnan(X)
    cnt = O.sum(axis=0)
    mean = np.where(O, X, 0.0).sum(axis=0) / np.maximum(cnt, 1)
    var = np.where(O, (X - mean) ** 2, 0.0).sum(axis=0) / np.maximum(cnt - 1, 1)
    return IncompleteStats(mean=mean, feature_var=var, n_samples=int(X.shape[0]),
                           n_features=tuple(x.shape[1] for x in Xs))


def missing_report(Xs, names=None) -> MissingReport:
    """:class:`MissingReport` of a list of float arrays with NaN for missing entries."""
    M = len(Xs)
    n = Xs[0].shape[0]
    names = tuple(f"Xs[{m}]" for m in range(M)) if names is None else tuple(str(x) for x in names)
    miss = [np.isnan(X) for X in Xs]
    frac = np.array([float(a.mean()) if a.size else 0.0 for a in miss])
    absent = np.array([int(np.all(a, axis=1).sum()) for a in miss])
    partial = np.array([int((np.any(a, axis=1) & ~np.all(a, axis=1)).sum()) for a in miss])
    O = np.hstack([~a for a in miss])
    n_complete = int(np.all(O, axis=1).sum())
    n_patterns = int(np.unique(O, axis=0).shape[0])
    seen = np.column_stack([np.any(~a, axis=1) for a in miss]).astype(float)
    co = (seen.T @ seen).astype(int)
    return MissingReport(n_samples=n, n_features=tuple(X.shape[1] for X in Xs), entry_fraction=frac,
                         n_absent=absent, n_partial=partial, n_complete=n_complete, n_patterns=n_patterns,
                         co_observed=co, names=names)


def check_incomplete(Xs, *, n_modalities=None, n_features=None, min_samples: int = 2, min_observed: int = 2,
                     name: str = "Xs", check_features: bool = True):
    """Check incomplete data ``Xs`` (NaN = missing) and report what is missing.

    Parameters
    ----------
    Xs : list of array-like of shape (n_samples, p_m)
    n_modalities, n_features, min_samples : as in :func:`hcl_stats._validation.check_Xs`.
    min_observed : int, default 2
        Observed values each feature needs (a variance needs two).
    check_features : bool, default True
        Refuse samples with no observed value, features with fewer than ``min_observed`` observed
        values and features constant over their observed values (for fitting; new rows to
        transform only need the shape checks and at least one observed value per row).

    Returns
    -------
    Xs : list of float64 arrays (NaN kept)
    report : MissingReport

    Raises
    ------
    ValueError
        Besides the checks of ``check_Xs`` (infinite entries are always refused): a sample
        (row) with no observed value in any modality, a feature with fewer than
        ``min_observed`` observed values, a feature constant over its observed values. Each
        message names the modality (and the rows or features). Nothing is dropped silently.
    """
    Xs = check_Xs(Xs, n_modalities=n_modalities, n_features=n_features, min_samples=min_samples, name=name,
                  allow_nan=True)
    O = np.hstack([~np.isnan(X) for X in Xs])
    empty = np.flatnonzero(~np.any(O, axis=1))
    if empty.size:
        raise ValueError(f"{name}: samples (rows) {empty[:10].tolist()}{' ...' if empty.size > 10 else ''} "
                         f"({empty.size} in all) have no observed value in any modality (all NaN); a sample "
                         "without any observation carries no information about the model. Remove these rows.")
    if check_features:
        for m, X in enumerate(Xs):
            cnt = np.sum(~np.isnan(X), axis=0)
            few = np.flatnonzero(cnt < min_observed)
            if few.size == X.shape[1]:
                raise ValueError(f"{name}[{m}] has fewer than {min_observed} observed values in every feature "
                                 f"(observed counts {cnt[:10].tolist()}); a modality must be observed in at least "
                                 f"{min_observed} samples. Remove it.")
            if few.size:
                raise ValueError(f"{name}[{m}]: features {few[:10].tolist()}{' ...' if few.size > 10 else ''} have fewer "
                                 f"than {min_observed} observed values (counts {cnt[few[:10]].tolist()}); their mean "
                                 "and variance cannot be estimated. Remove them.")
            with np.errstate(invalid="ignore"):
                ptp = np.nanmax(X, axis=0) - np.nanmin(X, axis=0)
            const = np.flatnonzero(ptp == 0)
            if const.size:
                raise ValueError(f"{name}[{m}]: features {const[:10].tolist()}{' ...' if const.size > 10 else ''} are "
                                 "constant over their observed values (zero variance); remove them before fitting.")
    return Xs, missing_report(Xs)


def check_coobserved(report: MissingReport, structure, name: str = "Xs") -> None:
    """Refuse a structure with a subset holding two modalities that no sample observes together:
    the cross-covariance of the pair, which fixes how their loadings on that subset align, is
    then not informed by any data."""
    bad = []
    for S in structure.subsets:
        for a, b in itertools.combinations(S, 2):
            if report.co_observed[a, b] == 0:
                bad.append((S, a, b))
    if bad:
        S, a, b = bad[0]
        raise ValueError(f"{name}: no sample observes both {report.names[a]} and {report.names[b]}, but the "
                         f"structure's subset {S} shares factors between them; their joint loadings are not "
                         f"identified from these data ({len(bad)} such pair(s)). Drop the subset or collect "
                         "samples observing both.")


# ------------------------------------------------------------------------------------------
# structure selection on incomplete data (available-case design)
# ------------------------------------------------------------------------------------------
# A test uses the rows observing all features it involves when they are at least this share of the
# rows observing some of them; otherwise the partly observed rows too, with missing entries set to
# the feature's mean.
COMPLETE_ROWS_SHARE = 0.5


def _modality_test(X, m, level, max_rank, noise):
    """Rank test of one modality on the rows observing it; returns (test, mean, scale, V, note)."""
    from .selection import modality_signal_rank, modality_signal_rank_feature

    obs = ~np.isnan(X)
    some = np.any(obs, axis=1)
    full = np.all(obs, axis=1)
    note = None
    if full.sum() >= COMPLETE_ROWS_SHARE * some.sum():
        if full.sum() < some.sum():
            note = (f"incomplete data: Xs[{m}]: its rank test used the {int(full.sum())} rows observing all its features (of "
                    f"{int(some.sum())} observing some)")
        Xr = X[full]
        mean = Xr.mean(axis=0)
        Xc = Xr - mean
        n_df = Xc.shape[0] - 1
        S = (Xc.T @ Xc) / n_df
        Xt = Xc
    else:
        # entries missing within the modality: each missing entry is set to its feature's mean.
        # When entries are missing independently of each other and of the values, the covariance of
        # the filled-in rows is pi_j pi_k Sigma_jk off the diagonal: a factor model of the same rank
        # plus diagonal noise, the model of the feature-noise rank test.
        Xr, Or = X[some], obs[some]
        cnt = Or.sum(axis=0)
        mean = np.where(Or, Xr, 0.0).sum(axis=0) / cnt
        Xc = np.where(Or, Xr - mean, 0.0)
        S = (Xc.T @ Xc) / (Xc.shape[0] - 1)
        Xt = Xc
        note = (f"Xs[{m}]: entries missing within the modality ({100 * (1 - Or.mean()):.1f}%), fewer than "
                f"{COMPLETE_ROWS_SHARE:.0%} of its rows complete; its rank test ran on the rows observing it with each "
                "missing entry set to its feature's mean (assumes entries missing independently)")
        if noise != "feature":
            note += " (this breaks a common noise variance: prefer noise='feature')"
    if noise == "feature":
        t, _ = modality_signal_rank_feature(Xt, level=level, max_rank=max_rank, modality=m, _cov=S)
        scale = np.sqrt(t.noise_var_features)
    else:
        t, _ = modality_signal_rank(Xt, level=level, max_rank=max_rank, modality=m, _cov=S)
        scale = np.ones(X.shape[1])
    d = t.rank
    V = np.zeros((X.shape[1], 0))
    if d > 0:
        Sw = S / scale[:, None] / scale[None, :]
        _, V = sla.eigh(0.5 * (Sw + Sw.T), subset_by_index=[X.shape[1] - d, X.shape[1] - 1])
        V = V[:, ::-1]
    return t, mean, scale, V, note


def _orth(U, rtol=1e-10):
    if U.shape[1] == 0:
        return U
    Q, R, _ = sla.qr(U, mode="economic", pivoting=True)
    dg = np.abs(np.diag(R))
    keep = dg > rtol * max(dg[0], np.finfo(float).tiny) if dg.size else np.zeros(0, bool)
    return Q[:, keep]


def _select_incomplete_once(Xs, level, max_rank, noise, names, label):
    from .selection import CanonicalRankTest, canonical_rank, structure_from_tests, tracy_widom1_quantile

    M = len(Xs)
    q_tw = tracy_widom1_quantile(level)
    notes = []
    mtests, scores, seen, whole = [], [], [], []
    for m, X in enumerate(Xs):
        t, mean, scale, V, note = _modality_test(X, m, level, max_rank, noise)
        if note:
            notes.append(note)
        mtests.append(t)
        # principal-component scores of every sample observing the modality; missing entries of a
        # partly observed row are set to the mean (under MCAR this keeps the rank of each
        # cross-covariance and the independence the null law needs)
        Xi = np.where(np.isnan(X), mean, X)
        scores.append(((Xi - mean) / scale) @ V)
        seen.append(np.any(~np.isnan(X), axis=1))
        whole.append(np.all(~np.isnan(X), axis=1))
    empty = [m for m, t in enumerate(mtests) if t.rank == 0]
    if empty:
        raise ValueError(f"Xs: no factor detected above the noise level in modalities {empty} at level={level:g} "
                         "(rank tests on the samples observing each modality); every modality must carry at least "
                         "one factor. More samples, a larger level, or dropping these modalities may help.")
    d = [t.rank for t in mtests]
    for m, t in enumerate(mtests):
        if t.hit_limit:
            notes.append(f"{label(m)}: every tested eigenvalue is above the noise edge (the rank hit its limit "
                         f"{t.max_rank}); its rank is a lower bound")
    ctests, h = {}, {}
    for m in range(M):
        others = [i for i in range(M) if i != m]
        for k in range(1, len(others) + 1):
            for T in itertools.combinations(others, k):
                rows, rows_full = seen[m].copy(), whole[m].copy()
                for t_ in T:
                    rows &= seen[t_]
                    rows_full &= whole[t_]
                if rows_full.sum() >= COMPLETE_ROWS_SHARE * rows.sum():
                    rows = rows_full
                nr = int(rows.sum())
                if nr < 3:
                    raise ValueError(f"Xs: only {nr} samples observe both {label(m)} and all of {T}; the canonical "
                                     "correlations between them cannot be tested (the structure is not identified "
                                     "from these data).")
                Um = scores[m][rows]
                UT = np.hstack([scores[t_][rows] for t_ in T])
                Qm = _orth(Um - Um.mean(axis=0))
                QT = _orth(UT - UT.mean(axis=0))
                rho = sla.svdvals(Qm.T @ QT) if Qm.size and QT.size else np.zeros(0)
                dims = (Qm.shape[1], QT.shape[1])
                rho, thr, rank, testable = canonical_rank(dims[0], dims[1], nr - 1, level, q_tw, rho=rho)
                ctests[(m, T)] = CanonicalRankTest(modality=m, others=T, dims=dims, canonical_corr=rho,
                                                   thresholds=thr, rank=rank, schur_rank=d[m] - rank,
                                                   testable=testable)
                h[(m, T)] = rank
                if not testable:
                    notes.append(f"canonical correlations of {label(m)} vs {T}: dimensions {dims[0]}x{dims[1]} too "
                                 f"large for the {nr} samples observing them")
    return structure_from_tests(M, d, h, mtests, ctests, names, label, notes)


def _stability_incomplete(Xs, full, n_resamples, fraction, rng, level, max_rank, noise, names, label):
    from .selection import stability_from_structures

    n = Xs[0].shape[0]
    m_sub = int(np.floor(fraction * n))
    if m_sub < 5:
        raise ValueError(f"resample_fraction={fraction:g} leaves {m_sub} of {n} samples per subsample; need at least 5.")
    structs = []
    for _ in range(n_resamples):
        idx = np.sort(rng.choice(n, size=m_sub, replace=False))
        try:
            s, _, _ = _select_incomplete_once([X[idx] for X in Xs], level, max_rank, noise, names, label)
        except (ValueError, np.linalg.LinAlgError):
            s = None
        structs.append(s)
    return stability_from_structures(structs, full, len(Xs), fraction)


def select_structure_incomplete(Xs, *, level=1e-3, max_rank=None, noise="feature", names=None, return_details=False,
                                n_resamples=0, resample_fraction=0.8, random_state=0, alpha=None):
    """Structure selection on incomplete data (NaN = missing), by an available-case design.

    The same three steps as :func:`hcl_stats.select_structure`, each statistic computed on the
    samples that observe what it involves:

    1. the signal rank d_m of modality m: the rank test of ``select_structure`` on the samples
       observing the modality (when entries are missing inside the modality too: on its
       available-case covariance, with the smallest pair count as the sample size);
    2. h(m, T): the sequential canonical-correlation test between the d_m leading
       principal-component scores of modality m (directions from step 1) and those of the
       modalities in T, on the samples observing m and every modality of T (missing entries of
       partly observed rows set to the feature's mean), with that number of samples in the null law;
    3. Moebius inversion and reconciliation, unchanged.

    Parameters and returns are those of :func:`hcl_stats.select_structure` (the summary of the
    details notes the available-case design).

    Notes
    -----
    Assumes the entries are missing completely at random (MCAR): then the samples used by each
    test are a random subset of the cohort, every statistic estimates the population rank it
    targets, and each null law holds with the number of samples the test used. Under MAR
    (missingness depending on observed values) the subsets are selected samples and the tests
    can be biased; the EM fit itself only needs MAR. Every pair of modalities in a tested set
    must be observed together by some samples; the fewer they are, the less power the tests
    involving them have (a canonical test on n' samples sees correlations above about
    sqrt(d / n')).
    """
    from .selection import MAX_MODALITIES, SelectionResult, check_selection_options

    if isinstance(Xs, (list, tuple)) and len(Xs) > MAX_MODALITIES:
        raise ValueError(f"Xs must contain at most {MAX_MODALITIES} modalities for structure selection (2^M - 1 "
                         f"candidate subsets); got {len(Xs)}.")
    Xs, report = check_incomplete(Xs, min_samples=5)
    level, max_rank, noise, names, label = check_selection_options(
        len(Xs), level, max_rank, noise, names, return_details, n_resamples, resample_fraction, alpha)
    M = len(Xs)
    n = Xs[0].shape[0]
    n_features = tuple(X.shape[1] for X in Xs)
    for m, X in enumerate(Xs):
        if X.shape[1] < 2:
            raise ValueError(f"{label(m)} must have at least 2 features to separate signal from noise; got shape {X.shape}.")
    for a, b in itertools.combinations(range(M), 2):
        if report.co_observed[a, b] == 0:
            raise ValueError(f"Xs: no sample observes both {label(a)} and {label(b)}; whether they share factors "
                             "cannot be tested from these data.")
    notes = []
    if report.any_missing:
        notes.append("incomplete data: available-case selection (each test on the samples observing its modalities; "
                     "assumes entries missing completely at random). " + str(report))
    struct, det, more = _select_incomplete_once(Xs, level, max_rank, noise, names, label)
    notes += more
    K = struct.n_factors
    n_min = int(min(report.co_observed[m, m] for m in range(M)))
    if K >= n_min - 1:
        raise ValueError(f"Xs: a modality is observed in only {n_min} samples, too few for the {K} factors detected "
                         "(needs more than K + 1); collect more samples or lower max_rank.")
    if n_min < 10 * K:
        notes.append(f"a modality is observed in only {n_min} samples, small for the {K} factors selected (fewer than "
                     "10 per factor): the rank tests have little power; check stability with n_resamples")
    stability = None
    if n_resamples:
        from ._validation import check_random_state

        rng = check_random_state(random_state)
        stability = _stability_incomplete(Xs, struct, n_resamples, float(resample_fraction), rng, level, max_rank,
                                          noise, names, label)
        if not stability.stable:
            notes.append(f"unstable selection: the most frequent structure was selected in {stability.modal_frequency:.0%} "
                         f"of {n_resamples} subsamples of {resample_fraction:.0%} of the rows, the full-data structure in "
                         f"{stability.agreement:.0%}")
    problems = struct.check_identifiable(n_features)
    if problems:
        notes.append("selected structure violates identifiability conditions: " + "; ".join(problems))
        warnings.warn(f"select_structure: the selected structure violates identifiability conditions: {'; '.join(problems)}",
                      IdentifiabilityWarning, stacklevel=user_stacklevel())
    data_notes = [s for s in notes if not s.startswith(("selected structure", "incomplete data"))]
    if data_notes:
        warnings.warn("select_structure: " + "; ".join(data_notes), DataWarning, stacklevel=user_stacklevel())
    if not return_details:
        return struct
    res = SelectionResult(structure=struct, n_samples=n, n_features=n_features, level=level, noise=noise,
                          warnings=notes, stability=stability, **det)
    res.missing = report
    return struct, res
