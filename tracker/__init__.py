"""siamtrack: a real-time Siamese single-object tracker.

Public API: SiamTracker, MultiTracker, TrackResult (and the errors in tracker.errors).
"""
from .errors import BoxError, DeviceError, FrameError, OutputError, SiamTrackError, VideoError, WeightsError
from .tracking import MultiTracker, SiamTracker, TrackResult

__all__ = ["SiamTracker", "MultiTracker", "TrackResult", "SiamTrackError", "WeightsError", "VideoError",
           "BoxError", "FrameError", "OutputError", "DeviceError"]
__version__ = "0.1.0"
