"""Loss registry: ``create_loss(spec, mode)`` builds a weighted sum of named terms.

``spec`` is the list written under ``params.yaml: losses.<name>``, e.g.
``[{term: dice, weight: 0.7}, {term: focal, weight: 0.3, gamma: 2.0}]``.
Families: distribution (pixel-level), region, boundary, compound.
"""

from segbench.losses.registry import (FAMILIES, LossContext, WeightedSum, create_loss, list_losses, loss_entry,
                                      register_loss)

# Importing the family modules fills the registry.
from segbench.losses import boundary, compound, distribution, region  # noqa: E402,F401

__all__ = ["FAMILIES", "LossContext", "WeightedSum", "create_loss", "list_losses", "loss_entry", "register_loss"]
