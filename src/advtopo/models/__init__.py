"""Models: the registry (built-in and public robust-zoo layouts), any model by spec, checkpoints, layers.

``build_model(arch, arch_kwargs, checkpoint=..., mean=..., std=...)`` builds a registry name,
``"package.module:factory"`` or ``"path/to/file.py:factory"``; checkpoints load strictly by name;
``list_layers`` / ``check_layers`` say which dotted layer names can be captured.
"""
from advtopo.models.zoo import MODELS, Normalize, create_model
from advtopo.models import robust  # noqa: F401  (registers the robust-zoo layouts in MODELS)
from advtopo.models.checkpoint import (KNOWN_LAYOUTS, load_checkpoint, load_weights, match_state_dict,
                                       read_state_dict, save_checkpoint)
from advtopo.models.layers import LayerInfo, check_layers, format_layers, layer_shapes, list_layers
from advtopo.models.spec import (add_input_normalization, arch_file, build_model, check_input_shape, resolve_arch,
                                 resolve_checkpoint)

__all__ = ["MODELS", "Normalize", "create_model", "save_checkpoint", "load_checkpoint", "match_state_dict",
           "read_state_dict", "load_weights", "KNOWN_LAYOUTS", "layer_shapes", "check_layers", "list_layers",
           "format_layers", "LayerInfo", "resolve_arch", "arch_file", "build_model", "add_input_normalization",
           "check_input_shape", "resolve_checkpoint"]
