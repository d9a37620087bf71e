"""
Downstream prediction from the representation
=============================================

A response depends on some of the latent factors. We learn the representation from many
unlabelled samples, regress the response on it for a few labelled ones, and correct the regression
for the noise the representation carries (errors in variables, docs/method.md, section 6). The
group lasso over subsets then tells which shared or specific factors the response depends on.
"""

# %%
# Data: unlabelled, labelled and test samples
# -------------------------------------------
# Three modalities with all seven subsets at rank 2. The response is
# ``y = beta^T z + noise`` with the coefficients of the subsets {0,1} and {2} set to zero.
import matplotlib.pyplot as plt
import numpy as np

from hcl_stats import HCL, Structure, metrics, simulate
from hcl_stats.downstream import CorrectedLeastSquares, GroupLassoCV, coefficient_errors, rotate_coefficients
from hcl_stats.representation import representation_noise_cov

structure = Structure.full(3, 2)
n_unlabelled, n_labelled, n_test = 4000, 500, 2000
data = simulate(structure, (50, 50, 50), n_samples=n_unlabelled + n_labelled + n_test, noise_var=0.5,
                random_state=3, response="linear", zero_groups=[(0, 1), (2,)])
rows = np.split(np.arange(data.Xs[0].shape[0]), [n_unlabelled, n_unlabelled + n_labelled])
unlab, lab, test = ([X[r] for X in data.Xs] for r in rows)
y_lab, y_test = data.y[rows[1]], data.y[rows[2]]
print("subsets:", [structure.label(s) for s in structure.subsets])
print("true beta:", np.round(data.beta, 2))

# %%
# The representation
# ------------------
# ``HCL`` is fitted on the unlabelled samples only. The representation ``C_hat x`` of the authors
# (``kind="paper"``) carries the model noise ``C_hat Psi C_hat^T``, which the corrected estimators
# subtract.
hcl = HCL(structure).fit(unlab)
Z_lab = hcl.represent(lab, kind="paper")
Z_test = hcl.represent(test, kind="paper")
noise_cov = representation_noise_cov(hcl, kind="paper")
print(Z_lab.shape, noise_cov.shape)

# %%
# Corrected and naive least squares
# ---------------------------------
# Without the correction the coefficients are attenuated towards zero. The coefficient errors are
# computed after rotating each subset's coefficients to the true latent coordinates (the model
# identifies each subset's factors up to a rotation). The correction estimates ``beta``, the
# effect of the latent factors; to *predict* y from the noisy representation of a new sample, the
# attenuated (naive) coefficients are the better linear predictor, and the test errors below show
# it: choose the estimator by the question.
_, rotations = metrics.align(hcl.loadings_, data.loadings, structure, data.n_features, return_rotations=True)
cls = CorrectedLeastSquares().fit(Z_lab, y_lab, noise_cov=noise_cov)
naive = CorrectedLeastSquares().fit(Z_lab, y_lab)
for name, est in (("corrected", cls), ("naive", naive)):
    err = coefficient_errors(est.coef_, data.beta, structure, rotations)["overall"]
    mse = np.mean((y_test - est.predict(Z_test)) ** 2)
    print(f"{name:>9} least squares: ||b - beta|| = {err:.3f}, test mean squared error = {mse:.3f}")

# %%
# Which subsets matter: the group lasso
# -------------------------------------
# One group per subset; the penalty is chosen by 3-fold cross-validation in which each fold's
# corrected moments come from its training rows only.
gl = GroupLassoCV(groups=structure, cv=3, random_state=0).fit(Z_lab, y_lab, noise_cov=noise_cov)
print("selected subsets:", [structure.label(s) for s in gl.selected_groups_])
print("relevant subsets:", [structure.label(s) for s in structure.subsets if s not in [(0, 1), (2,)]])
err = coefficient_errors(gl.coef_, data.beta, structure, rotations)["overall"]
print(f"group lasso: ||b - beta|| = {err:.3f}, test mean squared error = {np.mean((y_test - gl.predict(Z_test)) ** 2):.3f}")

# %%
# The size of each subset's coefficient block, ``||beta_S||``, for the truth and the estimates
# (rotated to the true latent coordinates).
labels = [structure.label(sub) for sub in structure.subsets]
blocks = {"truth": data.beta, "corrected LS": rotate_coefficients(cls.coef_, rotations, structure),
          "naive LS": rotate_coefficients(naive.coef_, rotations, structure),
          "group lasso (CV)": rotate_coefficients(gl.coef_, rotations, structure)}
fig, ax = plt.subplots(figsize=(7, 3.5))
width = 0.2
for k, (name, coef) in enumerate(blocks.items()):
    norms = [np.linalg.norm(coef[cs]) for cs in structure.column_slices.values()]
    ax.bar(np.arange(len(labels)) + (k - 1.5) * width, norms, width, label=name)
ax.set_xticks(np.arange(len(labels)), labels)
ax.set_xlabel("subset")
ax.set_ylabel("norm of the coefficient block")
ax.legend(fontsize=8)
plt.tight_layout()
plt.show()
