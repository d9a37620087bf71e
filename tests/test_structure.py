"""Structure: construction, normalisation, layout, validation, identifiability."""
import itertools
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hcl_stats import Structure

EXAMPLE = {(0, 1, 2): 2, (0, 1): 2, (1, 2): 1, (0,): 2, (1,): 2, (2,): 2}


def test_example_structure_attributes():
    s = Structure(EXAMPLE, 3)
    assert s.n_factors == 11
    assert s.n_modalities == 3
    assert s.subsets == ((0, 1, 2), (0, 1), (1, 2), (0,), (1,), (2,))
    assert dict(s.ranks) == EXAMPLE
    assert s.column_slices[(1, 2)] == slice(4, 5)
    assert s.kind((0, 1, 2)) == "global" and s.kind((0, 1)) == "partial" and s.kind((2,)) == "specific"
    with pytest.warns(FutureWarning, match=r"Structure.level is deprecated; use Structure.kind") as rec:
        assert s.level((0, 1)) == "partial"
    assert rec[0].filename == __file__
    assert s.subsets_containing(2) == ((0, 1, 2), (1, 2), (2,))


def test_normalisation_and_equality():
    a = Structure({(2, 1, 0): 2, (1, 0): 2, (2, 1): 1, (0,): 2, 1: 2, (2,): 2}, 3)
    b = Structure(EXAMPLE, 3)
    assert a == b and hash(a) == hash(b)
    assert a.ranks == b.ranks
    assert len({a, b}) == 1


def test_full_order_matches_authors_columns():
    s = Structure.full(3, 3)
    assert s.subsets == ((0, 1, 2), (0, 1), (0, 2), (1, 2), (0,), (1,), (2,))
    assert s.n_factors == 21
    assert Structure.full(4, 1).n_subsets == 15


def test_support_mask_and_rows():
    s = Structure(EXAMPLE, 3)
    nf = (4, 5, 6)
    mask = s.support_mask(nf)
    assert mask.shape == (15, 11)
    rows = s.row_slices(nf)
    # modality 2 does not load on {0,1} nor on the specific factors of 0 and 1
    assert not mask[rows[2], s.column_slice((0, 1))].any()
    assert mask[rows[2], s.column_slice((1, 2))].all()
    assert mask.sum() == sum(nf[m] * s.rank(sub) for m, sub in s.blocks())


def test_immutable_hashable_picklable():
    s = Structure(EXAMPLE, 3, names=["codes", "notes", "labs"])
    with pytest.raises(AttributeError):
        s._items = ()
    with pytest.raises(TypeError):
        s.ranks[(0,)] = 5
    assert pickle.loads(pickle.dumps(s)) == s
    assert Structure.from_dict(s.to_dict()) == s
    assert "codes" in repr(s) and "codes" in str(s)


def test_readable_table():
    s = Structure(EXAMPLE, 3, names=["codes", "notes", "labs"])
    table = s.table()
    assert "{codes,notes,labs}" in table
    lines = table.splitlines()
    assert lines[2].startswith("codes") and lines[4].strip().startswith("labs")
    # labs has no factor on {codes,notes}: shown as '.'
    assert "." in lines[4]


@pytest.mark.parametrize(
    "ranks, n_mod, match",
    [
        ({(): 1}, 3, "at least one modality"),
        ({(0, 0): 1, (1,): 1}, 2, "repeats a modality"),
        ({(0, 3): 1, (1,): 1, (2,): 1}, 3, r"outside 0\.\.2"),
        ({(0,): 0, (1,): 1}, 2, "positive integer; got 0"),
        ({(0,): 1.5, (1,): 1}, 2, "positive integer; got 1.5"),
        ({(0,): 1}, 2, r"modalities \[1\] carry no factor"),
        ({(0, 1): 1, (1, 0): 2}, 2, "more than once"),
        ({}, 2, "at least one subset"),
        ([((0,), 1)], 1, "must be a mapping"),
        ({("a",): 1}, 1, "must be integers"),
    ],
)
def test_validation_messages(ranks, n_mod, match):
    with pytest.raises(ValueError, match=match):
        Structure(ranks, n_mod)


def test_bad_n_modalities_and_names():
    with pytest.raises(ValueError, match="n_modalities must be a positive integer; got 0"):
        Structure({(0,): 1}, 0)
    with pytest.raises(ValueError, match="names must have one entry per modality"):
        Structure({(0,): 1}, 1, names=["a", "b"])


def test_check_identifiable():
    s = Structure(EXAMPLE, 3)
    assert s.check_identifiable((100, 80, 60)) == []
    problems = s.check_identifiable((3, 3, 3))
    assert any("must be below the total number of features" in p for p in problems)
    assert any("conditioning on modalities" in p for p in problems)
    # rank larger than a modality's features
    assert any("exceeds the 1 features" in p for p in s.check_identifiable((1, 80, 60)))


def test_conditioning_steps_reproduce_authors_truncation_ranks():
    s = Structure.full(3, 3)
    q = {(S, m): sum(s.rank(x) for x in rem) for S, m, T, _, rem in s.conditioning_steps()}
    for m in range(3):
        assert q[((m,), m)] == 18  # pinv_{6r}
    for S in [(0, 1), (0, 2), (1, 2)]:
        for m in S:
            assert q[(S, m)] == 9  # pinv_{3r}
    assert all(q[((0, 1, 2), m)] == 0 for m in range(3))


# -- property-based ------------------------------------------------------------------------
subset_families = st.integers(min_value=1, max_value=5).flatmap(
    lambda M: st.tuples(
        st.just(M),
        st.dictionaries(
            st.lists(st.integers(0, M - 1), min_size=1, max_size=M, unique=True).map(tuple),
            st.integers(1, 4),
            min_size=1,
            max_size=10,
        ),
    )
)


@settings(max_examples=200, deadline=None)
@given(subset_families)
def test_random_families_build_or_fail_cleanly(fam):
    M, ranks = fam
    try:
        s = Structure(ranks, M)
    except ValueError as exc:
        covered = set(itertools.chain.from_iterable(ranks))
        normalised = [tuple(sorted(k)) for k in ranks]
        assert len(covered) < M or len(set(normalised)) < len(normalised), str(exc)
        return
    # invariants of a valid structure
    assert s.n_factors == sum(ranks.values())
    assert sorted(s.subsets, key=lambda x: (-len(x), x)) == list(s.subsets)
    nf = [s.n_factors + 2] * M
    mask = s.support_mask(nf)
    assert mask.shape == (sum(nf), s.n_factors)
    assert s == Structure({tuple(reversed(k)): v for k, v in ranks.items()}, M)
    assert isinstance(s.check_identifiable(nf), list)


@settings(max_examples=100, deadline=None)
@given(st.one_of(st.integers(), st.text(max_size=3), st.none(), st.lists(st.integers(), max_size=3),
                 st.dictionaries(st.integers(-2, 4), st.one_of(st.integers(-1, 3), st.floats(), st.text(max_size=2)), max_size=4)))
def test_malformed_ranks_raise_valueerror_only(bad):
    try:
        Structure(bad, 3)
    except ValueError:
        pass


def test_feature_rows_are_the_stacked_rows_of_the_modalities_in_the_order_given():
    import numpy as np
    from hcl_stats import Structure

    s = Structure({(0, 1, 2): 1, (0,): 1}, 3)
    nf = (2, 3, 1)
    np.testing.assert_array_equal(s.feature_rows((0, 2), nf), [0, 1, 5])
    np.testing.assert_array_equal(s.feature_rows((2, 0), nf), [5, 0, 1])
    assert s.feature_rows((), nf).size == 0 and s.feature_rows((), nf).dtype.kind == "i"
    mask = s.support_mask(nf)
    for sub, cs in s.column_slices.items():      # the rows a subset's columns may load on
        np.testing.assert_array_equal(np.flatnonzero(mask[:, cs.start]), np.sort(s.feature_rows(sub, nf)))
