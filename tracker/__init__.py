"""siamtrack: a real-time Siamese single-object tracker.

Public API: SiamTracker, MultiTracker, TrackResult, track, OpenCVTracker (and the errors in tracker.errors).
"""
import os as _os

# Numba's compiled post-processing is cached in the user's cache, never beside the installed sources: files
# numba leaves in site-packages/tracker/ outlive `pip uninstall` and shadow a later editable install (the
# README's demo, then its test command, in one environment: tracker.postprocess.box was not found).
_os.environ.setdefault("NUMBA_CACHE_DIR", _os.path.join(_os.path.expanduser("~"), ".cache", "siamtrack", "numba"))
from .errors import BoxError, DeviceError, FrameError, OutputError, SiamTrackError, VideoError, WeightsError
from .tracking import MultiTracker, SiamTracker, TrackResult
from .adapters import OpenCVTracker
from .streaming import track

__all__ = ["SiamTracker", "MultiTracker", "TrackResult", "track", "OpenCVTracker", "SiamTrackError", "WeightsError",
           "VideoError", "BoxError", "FrameError", "OutputError", "DeviceError"]
__version__ = "0.1.0"
