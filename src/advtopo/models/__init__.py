"""Model zoo (registry), checkpoints with their config, layer listing."""
from advtopo.models.checkpoint import load_checkpoint, match_state_dict, save_checkpoint
from advtopo.models.layers import check_layers, layer_shapes
from advtopo.models.zoo import MODELS, Normalize, create_model

__all__ = ["MODELS", "Normalize", "create_model", "save_checkpoint", "load_checkpoint",
           "match_state_dict", "layer_shapes", "check_layers"]
