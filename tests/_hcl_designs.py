"""Structures shared by test_als.py, test_ml.py and test_sparse.py (M = 2..5, unequal ranks,
absent subsets)."""
from hcl_stats import Structure

DESIGNS = {
    2: (Structure({(0, 1): 2, (0,): 1, (1,): 3}, 2), (8, 10)),
    3: (Structure({(0, 1, 2): 2, (0, 1): 1, (1, 2): 2, (0,): 1, (2,): 2}, 3), (9, 11, 13)),
    4: (Structure({(0, 1, 2, 3): 2, (0, 1, 2): 1, (0, 1): 1, (2, 3): 2, (0,): 1, (3,): 2}, 4), (8, 9, 10, 11)),
    5: (Structure({(0, 1, 2, 3, 4): 1, (0, 1, 2): 2, (1, 2, 3, 4): 1, (3, 4): 1, (0,): 1, (2,): 2, (4,): 1}, 5),
        (7, 8, 9, 10, 11)),
}
