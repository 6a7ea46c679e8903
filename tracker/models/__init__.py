"""Network: backbones, comparison heads, the Siamese wrapper and checkpoint I/O."""
from .siamese import SiameseNet, inference_copy
from .checkpoints import load_checkpoint, save_checkpoint

__all__ = ["SiameseNet", "inference_copy", "load_checkpoint", "save_checkpoint"]
