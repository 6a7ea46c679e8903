"""What the SiamFC and box families' steps share: the exemplar is the lifecycle's context crop."""
from __future__ import annotations

import numpy as np


class ContextExemplar:
    """Exemplar crop = SiamFC's context rule around the box (:meth:`tracking._Target.exemplar_into`)."""

    @staticmethod
    def exemplar_into(target, frame: np.ndarray, out: np.ndarray) -> None:
        target.exemplar_into(frame, out)
