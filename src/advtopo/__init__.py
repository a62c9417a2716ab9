"""advtopo: what adversarial attacks and adversarial training do to the shape of activations.

The package layout follows the pipeline, each stage depending only on the ones before it:

    data -> models -> adversarial -> activations -> mapper / persistence -> study -> app
"""
from __future__ import annotations

__version__ = "0.1.0"

from advtopo.errors import AdvtopoError

__all__ = ["AdvtopoError", "__version__"]
