"""Exceptions users can catch; every message is one line saying what was wrong and what to do."""


class SiamTrackError(Exception):
    """Base class of every error siamtrack raises on bad input."""


class WeightsError(SiamTrackError):
    """A checkpoint is missing, corrupt, of another architecture, or fails its checksum."""


class VideoError(SiamTrackError):
    """A video source cannot be opened or decoded."""


class BoxError(SiamTrackError, ValueError):
    """An initial box is malformed or does not overlap the frame."""


class FrameError(SiamTrackError, ValueError):
    """A frame cannot be interpreted as an image."""


class OutputError(SiamTrackError):
    """An output path cannot be written."""


class DeviceError(SiamTrackError):
    """The requested compute device is not available."""


class DatasetError(SiamTrackError):
    """A benchmark dataset folder is missing, of an unknown layout, or inconsistent."""
