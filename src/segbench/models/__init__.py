"""Architecture registry: ``create_model(name, in_channels, classes, **cfg)``.

``name`` is a registry entry (``segbench list architectures``); ``cfg`` holds the options
written under ``params.yaml: architectures.<name>``.
"""

from segbench.models.registry import create_model, list_models, model_entry, register_model

# Importing the model modules fills the registry.
from segbench.models import (  # noqa: E402,F401
    attention_unet, multiresunet, r2unet, smp_models, transunet, unet, unet3plus, unet_plusplus)

__all__ = ["create_model", "list_models", "model_entry", "register_model"]
