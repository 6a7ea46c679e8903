"""Networks of every family (backbones, comparison heads, Siamese wrappers) and checkpoint I/O."""
from .box_siamese import BoxSiameseNet
from .centre import CentreSiameseNet
from .checkpoints import load_checkpoint, save_checkpoint
from .network import Network, build_network, inference_copy
from .siamese import SiameseNet

__all__ = ["SiameseNet", "BoxSiameseNet", "CentreSiameseNet", "Network", "build_network", "inference_copy", "load_checkpoint",
           "save_checkpoint"]
