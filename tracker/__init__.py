"""siamtrack: a real-time Siamese single-object tracker.

Public API: SiamTracker, MultiTracker, TrackResult, track, OpenCVTracker (and the errors in tracker.errors).
"""
from .errors import BoxError, DeviceError, FrameError, OutputError, SiamTrackError, VideoError, WeightsError
from .tracking import MultiTracker, SiamTracker, TrackResult
from .adapters import OpenCVTracker
from .streaming import track

__all__ = ["SiamTracker", "MultiTracker", "TrackResult", "track", "OpenCVTracker", "SiamTrackError", "WeightsError",
           "VideoError", "BoxError", "FrameError", "OutputError", "DeviceError"]
__version__ = "0.1.0"
