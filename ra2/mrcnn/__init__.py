"""ra2.mrcnn: a Keras 3 Mask R-CNN with matterport's architecture, API and layer names.

General purpose (it knows nothing about joints). ``import ra2.mrcnn`` is cheap: ``Config`` and
``Dataset`` are NumPy-only, and ``MaskRCNN`` (which needs TensorFlow) is imported from
``ra2.mrcnn.model`` only when first accessed.
"""

from ra2.mrcnn.config import Config
from ra2.mrcnn.utils import Dataset

__all__ = ["Config", "Dataset", "MaskRCNN"]


def __getattr__(name: str):
    if name == "MaskRCNN":
        from ra2.mrcnn.model import MaskRCNN

        return MaskRCNN
    raise AttributeError(f"module 'ra2.mrcnn' has no attribute {name!r}")
