"""`Structure`: which subsets of the modalities carry latent factors, and at what rank."""
from __future__ import annotations

import itertools
import numbers
from collections.abc import Mapping
from types import MappingProxyType

import numpy as np

from ._validation import check_n_features

__all__ = ["Structure"]


def _subset_order_key(s: tuple[int, ...]):
    # larger subsets first, then lexicographic (the authors' column order)
    return (-len(s), s)


class Structure:
    """Which subsets of ``n_modalities`` modalities share latent factors, and at what rank.

    Parameters
    ----------
    ranks : mapping of tuple of int to int
        Keys are non-empty tuples of 0-based modality indices (any order; they are
        normalised to sorted tuples), values are positive ranks. A subset of size
        ``n_modalities`` is global, of size 2 .. M-1 partially shared, of size 1
        modality-specific.
    n_modalities : int
        Number of modalities M.
    names : sequence of str, optional
        Modality names used in reprs, summaries and plots.

    Attributes
    ----------
    subsets : tuple of tuple of int
        The subsets in column order: larger subsets first, then lexicographic
        (the order of the authors' code, e.g. (0,1,2), (0,1), (0,2), (1,2), (0,), (1,), (2,)).
    ranks : mapping
        Read-only view ``subset -> rank``.
    n_factors : int
        K, the sum of the ranks.

    Notes
    -----
    A ``Structure`` is immutable and hashable; two structures built from equivalent
    inputs (e.g. keys ``(1, 0)`` and ``(0, 1)``) compare equal.

    Examples
    --------
    >>> s = Structure({(0, 1, 2): 2, (0, 1): 2, (1, 2): 1, (0,): 2, (1,): 2, (2,): 2}, 3)
    >>> s.n_factors
    11
    >>> s.subsets[:3]
    ((0, 1, 2), (0, 1), (1, 2))
    """

    __slots__ = ("_n_modalities", "_items", "_names", "_hash")

    def __init__(self, ranks, n_modalities, names=None):
        if not isinstance(n_modalities, numbers.Integral) or isinstance(n_modalities, bool) or n_modalities < 1:
            raise ValueError(f"n_modalities must be a positive integer; got {n_modalities!r}.")
        M = int(n_modalities)
        if not isinstance(ranks, Mapping):
            raise ValueError(
                f"ranks must be a mapping from tuples of modality indices to positive ranks, e.g. {{(0, 1): 2, (0,): 1}}; got {type(ranks).__name__}."
            )
        if len(ranks) == 0:
            raise ValueError("ranks must name at least one subset; got an empty mapping.")
        items = {}
        for key, r in ranks.items():
            if isinstance(key, numbers.Integral) and not isinstance(key, bool):
                key = (key,)
            if not isinstance(key, (tuple, list, frozenset, set)):
                raise ValueError(f"ranks: each key must be a tuple of modality indices; got key {key!r}.")
            idx = list(key)
            if len(idx) == 0:
                raise ValueError("ranks: a subset must contain at least one modality; got the empty subset ().")
            if not all(isinstance(i, numbers.Integral) and not isinstance(i, bool) for i in idx):
                raise ValueError(f"ranks: modality indices must be integers; got subset {tuple(key)!r}.")
            if len(set(idx)) != len(idx):
                raise ValueError(f"ranks: subset {tuple(key)!r} repeats a modality index.")
            bad = [i for i in idx if i < 0 or i >= M]
            if bad:
                raise ValueError(f"ranks: subset {tuple(key)!r} has modality indices {bad} outside 0..{M - 1} (n_modalities={M}).")
            s = tuple(sorted(int(i) for i in idx))
            if s in items:
                raise ValueError(f"ranks: subset {s} is given more than once (keys are normalised to sorted tuples).")
            if not isinstance(r, numbers.Integral) or isinstance(r, bool) or r < 1:
                raise ValueError(f"ranks: the rank of subset {s} must be a positive integer; got {r!r}.")
            items[s] = int(r)
        covered = set(itertools.chain.from_iterable(items))
        missing = [m for m in range(M) if m not in covered]
        if missing:
            raise ValueError(f"ranks: modalities {missing} carry no factor (no subset contains them); every modality needs at least one.")
        if names is not None:
            names = tuple(str(n) for n in names)
            if len(names) != M:
                raise ValueError(f"names must have one entry per modality ({M}); got {len(names)}.")
            if len(set(names)) != M:
                raise ValueError(f"names must be distinct; got {names!r}.")
        self._n_modalities = M
        self._items = tuple(sorted(items.items(), key=lambda kv: _subset_order_key(kv[0])))
        self._names = names
        self._hash = hash((M, self._items, names))

    # -- construction -------------------------------------------------------------------
    @classmethod
    def full(cls, n_modalities: int, rank: int = 1, names=None) -> "Structure":
        """All 2^M - 1 non-empty subsets, each at ``rank``."""
        if not isinstance(n_modalities, numbers.Integral) or isinstance(n_modalities, bool) or n_modalities < 1:
            raise ValueError(f"n_modalities must be a positive integer; got {n_modalities!r}.")
        if n_modalities > 16:
            raise ValueError(f"n_modalities must be at most 16 for Structure.full (2^M - 1 subsets); got {n_modalities}.")
        subsets = [s for k in range(1, n_modalities + 1) for s in itertools.combinations(range(n_modalities), k)]
        return cls({s: rank for s in subsets}, n_modalities, names=names)

    def with_names(self, names) -> "Structure":
        return Structure(dict(self._items), self._n_modalities, names=names)

    # -- basic attributes ---------------------------------------------------------------
    @property
    def n_modalities(self) -> int:
        return self._n_modalities

    @property
    def subsets(self) -> tuple:
        return tuple(s for s, _ in self._items)

    @property
    def ranks(self):
        return MappingProxyType(dict(self._items))

    @property
    def names(self) -> tuple:
        return self._names if self._names is not None else tuple(f"m{m}" for m in range(self._n_modalities))

    @property
    def n_factors(self) -> int:
        return sum(r for _, r in self._items)

    @property
    def n_subsets(self) -> int:
        return len(self._items)

    def rank(self, subset) -> int:
        return dict(self._items)[self.normalise_subset(subset)]

    def kind(self, subset) -> str:
        """Where ``subset`` sits in the hierarchy: "global" (all modalities), "specific" (one
        modality) or "partial" (in between)."""
        k = len(self.normalise_subset(subset))
        if k == self._n_modalities:
            return "global"
        return "specific" if k == 1 else "partial"

    def level(self, subset) -> str:
        """Deprecated name of :meth:`kind` (in hcl_stats ``level`` is a test level)."""
        import warnings

        from ._validation import user_stacklevel

        warnings.warn("Structure.level is deprecated; use Structure.kind (global, partial or specific).",
                      FutureWarning, stacklevel=user_stacklevel())
        return self.kind(subset)

    def subsets_containing(self, m: int) -> tuple:
        return tuple(s for s, _ in self._items if m in s)

    def factor_groups(self) -> np.ndarray:
        """Array (K,) giving for each column the index of its subset in ``subsets``."""
        return np.repeat(np.arange(self.n_subsets), [r for _, r in self._items])

    def normalise_subset(self, subset) -> tuple:
        """``subset`` (an int or an iterable of modality indices) as the sorted tuple this
        structure uses as its key; KeyError naming the subsets if it is not one of them."""
        if isinstance(subset, numbers.Integral):
            subset = (subset,)
        s = tuple(sorted(int(i) for i in subset))
        if s not in dict(self._items):
            raise KeyError(f"subset {s} is not in this structure; its subsets are {self.subsets}.")
        return s

    _normalise = normalise_subset  # the old private name (used by callers outside this module)

    # -- layout -------------------------------------------------------------------------
    @property
    def column_slices(self):
        """Mapping subset -> slice of the columns of the (p, K) loading matrix."""
        out, start = {}, 0
        for s, r in self._items:
            out[s] = slice(start, start + r)
            start += r
        return MappingProxyType(out)

    def column_slice(self, subset) -> slice:
        return self.column_slices[self.normalise_subset(subset)]

    def row_slices(self, n_features) -> list:
        """Slices of the rows of each modality in the stacked (p, K) loadings."""
        n_features = check_n_features(n_features, self._n_modalities)
        bounds = np.concatenate([[0], np.cumsum(n_features)])
        return [slice(int(bounds[m]), int(bounds[m + 1])) for m in range(self._n_modalities)]

    def feature_rows(self, modalities, n_features) -> np.ndarray:
        """Indices (int array) of the rows of the stacked (p, K) loadings that belong to the given
        modalities (any iterable of modality indices, e.g. a subset), modality by modality in the
        order given."""
        rows = self.row_slices(n_features)
        return np.concatenate([np.arange(rows[m].start, rows[m].stop) for m in modalities]
                              or [np.zeros(0, dtype=int)])

    def support_mask(self, n_features) -> np.ndarray:
        """Boolean (p, K) mask: entry (j, k) is True when feature j's modality is in column k's subset."""
        rows = self.row_slices(n_features)
        mask = np.zeros((rows[-1].stop, self.n_factors), dtype=bool)
        for s, cs in self.column_slices.items():
            for m in s:
                mask[rows[m], cs] = True
        return mask

    def blocks(self):
        """Iterate over the non-zero loading blocks as (m, subset) pairs, in column then modality order."""
        for s in self.subsets:
            for m in s:
                yield m, s

    # -- identifiability ----------------------------------------------------------------
    def conditioning_steps(self):
        """The (subset, modality, conditioning set T, remaining structures) steps of the
        generalised Schur-complement initialisation, level by level (specific first).

        For target subset S and modality m in S, T is the complement of S. The covariance
        block of T is used with the Gram blocks of already-estimated lower-level subsets
        S' removed from its diagonal blocks when S' touches T in a single modality and
        does not contain m; the structures remaining in it are listed. For M = 3 this is
        exactly the authors' sequence (truncation ranks 6r, then 3r).
        """
        M = self._n_modalities
        order = sorted(self.subsets, key=lambda s: (len(s), s))
        done = []
        steps = []
        for level in range(1, M + 1):
            this_level = [s for s in order if len(s) == level]
            for S in this_level:
                T = tuple(i for i in range(M) if i not in S)
                for m in S:
                    removed = [Sp for Sp in done if len(set(Sp) & set(T)) == 1 and m not in Sp]
                    remaining = tuple(Sp for Sp in self.subsets if set(Sp) & set(T) and Sp not in removed)
                    steps.append((S, m, T, tuple(removed), remaining))
            done.extend(this_level)
        return steps

    def check_identifiable(self, n_features) -> list[str]:
        """Rank conditions of the Schur-complement identifiability argument.

        Returns the list of violated conditions (empty when generic loadings of this
        structure are identified up to one rotation per subset):

        1. every block W_{m,S} can have full column rank: r_S <= p_m;
        2. for every step of the initialisation (subset S, modality m, conditioning set
           T = complement of S), the loadings of T on the structures remaining in the
           T block have full column rank; for block-sparse generic loadings this is
           Hall's condition: for every non-empty U subset of T, the total rank of the
           remaining structures meeting T only inside U is at most sum_{t in U} p_t;
        3. the noise variance is estimable: K < p.
        """
        n_features = check_n_features(n_features, self._n_modalities)
        p = sum(n_features)
        ranks = dict(self._items)
        problems = []
        for S, r in self._items:
            for m in S:
                if r > n_features[m]:
                    problems.append(f"block (modality {m}, subset {S}): rank {r} exceeds the {n_features[m]} features of modality {m}")
        if self.n_factors >= p:
            problems.append(f"total rank K = {self.n_factors} must be below the total number of features p = {p} to estimate the noise variance")
        seen = set()
        for S, m, T, removed, remaining in self.conditioning_steps():
            if not T:
                continue
            key = (T, remaining)
            if key in seen:
                continue
            seen.add(key)
            for k in range(1, len(T) + 1):
                for U in itertools.combinations(T, k):
                    cols = sum(ranks[Sp] for Sp in remaining if set(Sp) & set(T) <= set(U))
                    rows = sum(n_features[t] for t in U)
                    if cols > rows:
                        problems.append(
                            f"conditioning on modalities {T} (to isolate subset {S}): the structures {[Sp for Sp in remaining if set(Sp) & set(T) <= set(U)]} "
                            f"have total rank {cols} on modalities {U}, which have only {rows} features"
                        )
        return problems

    # -- dunder -------------------------------------------------------------------------
    def __eq__(self, other):
        if not isinstance(other, Structure):
            return NotImplemented
        return (self._n_modalities, self._items, self._names) == (other._n_modalities, other._items, other._names)

    def __hash__(self):
        return self._hash

    def __setattr__(self, name, value):
        if hasattr(self, "_hash"):
            raise AttributeError("Structure is immutable")
        object.__setattr__(self, name, value)

    def __reduce__(self):
        return (Structure, (dict(self._items), self._n_modalities, self._names))

    def to_dict(self) -> dict:
        """JSON-friendly description: {"n_modalities": M, "ranks": {"0,1": 2, ...}, "names": [...]}"""
        return {
            "n_modalities": self._n_modalities,
            "ranks": {",".join(map(str, s)): r for s, r in self._items},
            "names": list(self._names) if self._names else None,
        }

    @classmethod
    def from_dict(cls, d) -> "Structure":
        ranks = {tuple(int(i) for i in str(k).split(",") if i.strip() != ""): int(v) for k, v in d["ranks"].items()}
        return cls(ranks, int(d["n_modalities"]), names=d.get("names"))

    def label(self, subset) -> str:
        s = self.normalise_subset(subset)
        if self._names is None:
            return "{" + ",".join(str(i) for i in s) + "}"
        return "{" + ",".join(self._names[i] for i in s) + "}"

    def table(self) -> str:
        """Modality x subset table of ranks ('.' where the block is structurally zero)."""
        labels = [self.label(s) for s in self.subsets]
        names = self.names
        w0 = max(len(n) for n in names)
        widths = [max(len(lab), 2) for lab in labels]
        head = " " * w0 + " | " + " ".join(lab.rjust(w) for lab, w in zip(labels, widths))
        lines = [head, "-" * len(head)]
        for m in range(self._n_modalities):
            cells = [(str(r) if m in s else ".").rjust(w) for (s, r), w in zip(self._items, widths)]
            lines.append(names[m].ljust(w0) + " | " + " ".join(cells))
        return "\n".join(lines)

    def __repr__(self):
        inner = ", ".join(f"{s}: {r}" for s, r in self._items)
        names = f", names={list(self._names)!r}" if self._names else ""
        return f"Structure({{{inner}}}, n_modalities={self._n_modalities}{names})"

    def __str__(self):
        return f"Structure with {self._n_modalities} modalities, {self.n_subsets} subsets, K = {self.n_factors} factors\n{self.table()}"
