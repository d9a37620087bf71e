"""
Simulate and fit
================

Draw data from a hierarchical multimodal factor model with a known structure, fit ``HCL`` to it,
read the summary, check the recovery of every loading block and plot the structure.
The model and its identification are in :doc:`/method` (sections 2 and 3).
"""

# %%
# A structure
# -----------
# Three modalities; two factors shared by all of them, one shared by modalities 0 and 1, and
# specific factors in each modality. The keys are the subsets of modalities, the values the ranks.
import matplotlib.pyplot as plt

from hcl_stats import HCL, Structure, metrics, simulate

structure = Structure({(0, 1, 2): 2, (0, 1): 1, (0,): 1, (1,): 1, (2,): 2}, n_modalities=3)
print(structure)
print("factors K =", structure.n_factors)

# %%
# The rank conditions that make the loadings identified (up to one rotation per subset) for
# these numbers of features; an empty list means none is violated.
n_features = (30, 40, 50)
print(structure.check_identifiable(n_features))

# %%
# Simulate
# --------
# 2000 samples, noise variance 0.1 on every feature. ``data.loadings`` is the true (p, K)
# loading matrix: rows by modality, column blocks in ``structure.subsets`` order.
data = simulate(structure, n_features, n_samples=2000, noise_var=0.1, random_state=0)
print([X.shape for X in data.Xs], data.loadings.shape)

# %%
# Fit
# ---
# The default is maximum likelihood by EM (PX-EM steps accelerated by SQUAREM) with one noise
# variance per feature (docs/method.md, section 11).
hcl = HCL(structure).fit(data.Xs)
print(hcl.summary())

# %%
# The fitted attributes have the shapes of the glossary (:doc:`/glossary`).
print("loadings_", hcl.loadings_.shape)
print("noise_var_", hcl.noise_var_.shape)
print("n_iter_", hcl.n_iter_, "converged_", hcl.converged_, "loglik_", round(hcl.loglik_, 3))

# %%
# Recovery
# --------
# The relative Gram error of each block ``||W_hat W_hat^T - W W^T||_F / ||W W^T||_F`` does not
# depend on the rotation of a subset; 1 is the error of estimating zero.
errors = metrics.gram_errors(hcl.loadings_, data.loadings, structure, data.n_features, relative=True)
for (m, subset), err in errors.items():
    print(f"{metrics.block_label(structure, m, subset):>12}: {err:.3f}")

# %%
# The authors' estimator ("paper mode") on the same data, for comparison. It stops by the
# authors' step schedule; ``converged_`` says whether the point it returns is stationary, by the
# same scale-free measure ``stop_crit_`` as every solver (:doc:`/method`, section 14).
paper = HCL(structure, method="paper").fit(data.Xs)
errors_paper = metrics.gram_errors(paper.loadings_, data.loadings, structure, data.n_features, relative=True)
print(f"largest block error: ML {max(errors.values()):.3f}, paper mode {max(errors_paper.values()):.3f}")
for name, est in (("ML", hcl), ("paper mode", paper)):
    print(f"{name:>10}: {est.n_iter_} iterations, stop_crit_ = {est.stop_crit_:.2g} (tol_ = {est.tol_:g}), "
          f"converged_ = {est.converged_}")

# %%
# Representation and plot
# -----------------------
# ``transform`` gives the (n_samples, K) representation; ``plot_structure`` the share of each
# modality's variance explained by each subset.
Z = hcl.transform(data.Xs)
print(Z.shape)
hcl.plot_structure()
plt.tight_layout()
plt.show()
