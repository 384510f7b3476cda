"""Architecture registry: ``create_model(name, in_channels, classes, **cfg)``.

``name`` is a family registered with :func:`register_model`; ``cfg`` holds the options
written under ``params.yaml: architectures.<name>`` (without ``family``).
"""

from segbench.models.registry import create_model, list_models, register_model

# Importing the family modules fills the registry.
from segbench.models import attention_unet, smp_models  # noqa: E402,F401

__all__ = ["create_model", "list_models", "register_model"]
