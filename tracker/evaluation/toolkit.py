"""The got10k toolkit's OTB experiment, offline.

got10k 0.1.3's ``ExperimentOTB.__init__`` always builds ``OTB(root, version, download=True)``, which
fetches every OTB sequence missing from ``root`` over the network. ``OfflineExperimentOTB`` builds
the dataset with ``download=False`` instead, so a local (even partial) OTB folder is used as it is.
``ExperimentGOT10k`` never downloads and needs no such wrapper.
"""
from __future__ import annotations

import os

from got10k.datasets import OTB
from got10k.experiments import ExperimentOTB


class OfflineExperimentOTB(ExperimentOTB):
    """``ExperimentOTB`` over a local OTB folder that never touches the network."""

    def __init__(self, root_dir: str | os.PathLike, version: int | str = 2015, result_dir: str | os.PathLike = "results",
                 report_dir: str | os.PathLike = "reports") -> None:
        # The parent __init__ would download: set the same attributes it sets, with download=False.
        self.dataset = OTB(str(root_dir), version, download=False)
        self.result_dir = os.path.join(str(result_dir), "OTB" + str(version))
        self.report_dir = os.path.join(str(report_dir), "OTB" + str(version))
        self.nbins_iou = 21
        self.nbins_ce = 51
