"""Plotting helpers (matplotlib is imported lazily, inside the functions)."""
from __future__ import annotations

import numpy as np

__all__ = ["plot_structure_heatmap"]


def plot_structure_heatmap(values, structure, ax=None, cmap="viridis", annotate=True, title=None,
                           label="share of variance explained"):
    """Modality x subset heatmap; structurally absent blocks are left blank."""
    import matplotlib.pyplot as plt

    values = np.asarray(values, float)
    if ax is None:
        _, ax = plt.subplots(figsize=(1.0 + 0.7 * structure.n_subsets, 0.8 + 0.5 * structure.n_modalities))
    mask = np.array([[m not in s for s in structure.subsets] for m in range(structure.n_modalities)])
    data = np.ma.masked_array(values, mask=mask)
    im = ax.imshow(data, cmap=cmap, aspect="auto", vmin=0.0, vmax=max(float(values.max()), 1e-12))
    ax.set_xticks(range(structure.n_subsets))
    ax.set_xticklabels([structure.label(s) for s in structure.subsets], rotation=45, ha="right")
    ax.set_yticks(range(structure.n_modalities))
    ax.set_yticklabels(structure.names)
    ax.set_xlabel("subset")
    ax.set_ylabel("modality")
    if annotate:
        for m in range(structure.n_modalities):
            for j, s in enumerate(structure.subsets):
                if m in s:
                    v = values[m, j]
                    ax.text(j, m, f"{v:.2f}", ha="center", va="center",
                            color="white" if v < 0.6 * values.max() else "black", fontsize=8)
    ax.figure.colorbar(im, ax=ax, label=label)
    if title:
        ax.set_title(title)
    return ax
