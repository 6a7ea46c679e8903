"""Trackers a benchmark compares, named on the command line: siamtrack variants and OpenCV peers.

Names: ``siamtrack`` (the default shipped model), ``siamtrack:WEIGHTS`` (a shipped model name or a
checkpoint path), either followed by ``@key=value,...`` loop-config overrides (e.g.
``siamtrack@scale_num=1``); ``csrt``, ``kcf``, ``mil`` (OpenCV contrib), ``nanotrack`` and ``vit``
(OpenCV DNN trackers; need their ONNX model paths); ``lighttrack``, ``lighttrack_vot``, ``fear`` and
``fear_smooth`` (upstream loops ported onto ONNX graphs, see onnx_peers; need the folder of their files);
``lightfc`` (LightFC's deployment graphs run by siamtrack's centre-head family, whose loop is LightFC's; needs
``--lightfc-dir``).
A peer that cannot run becomes a spec with ``error`` set, reported as "not run: why" instead of being dropped.

Factories are picklable (``functools.partial`` of module-level classes) so worker processes can
build their own trackers.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import onnxruntime as ort

from ..errors import SiamTrackError, WeightsError
from ..model_zoo import shipped_models
from ..models.checkpoints import file_sha256
from ..tracking import SiamTracker, TrackResult
from .onnx_peers import ONNX_PEERS

OPENCV_PEERS = ("csrt", "kcf", "mil", "nanotrack", "vit")


@dataclass(frozen=True)
class PeerOptions:
    """Model files of the OpenCV DNN peers and folders of the ONNX peers' graphs (None = not given);
    siamtrack's device and backend."""

    nano_backbone: Path | None = None
    nano_neckhead: Path | None = None
    vit_model: Path | None = None
    device: str = "cpu"
    backend: str = "auto"
    lighttrack_dir: Path | None = None
    fear_dir: Path | None = None
    lightfc_dir: Path | None = None


@dataclass(frozen=True)
class TrackerSpec:
    """A named tracker: ``factory()`` builds a fresh instance; ``error`` says why it cannot run.

    ``identity`` pins what exactly runs (weights digest and config, or OpenCV version and model
    files), so ``--resume`` never mixes boxes of a retrained model into a report under the same name.
    """

    name: str
    factory: Callable[[], Any] | None
    error: str | None = None
    identity: str = ""


class OpenCVPeer:
    """A cv2 tracker behind ``init(frame, box)`` / ``update(frame) -> TrackResult``.

    OpenCV trackers take integer boxes; when one reports failure, the previous box is kept and
    the frame counts as lost. ``score`` is the tracker's own confidence where it has one.
    """

    def __init__(self, kind: str, model_paths: tuple[str, ...] = ()) -> None:
        self.kind = kind
        self.model_paths = model_paths
        self._tracker: Any = None
        self._box = (0.0, 0.0, 0.0, 0.0)

    def _create(self) -> Any:
        if self.kind == "csrt":
            return cv2.TrackerCSRT_create()
        if self.kind == "kcf":
            return cv2.TrackerKCF_create()
        if self.kind == "mil":
            return cv2.TrackerMIL_create()
        if self.kind == "nanotrack":
            params = cv2.TrackerNano_Params()
            params.backbone, params.neckhead = self.model_paths
            return cv2.TrackerNano_create(params)
        if self.kind == "vit":
            params = cv2.TrackerVit_Params()
            params.net = self.model_paths[0]
            return cv2.TrackerVit_create(params)
        raise ValueError(f"unknown OpenCV tracker {self.kind!r}")

    def init(self, frame: np.ndarray, box: tuple[float, ...]) -> None:
        previous = cv2.utils.logging.getLogLevel()
        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # OpenCV 5 DNN warns on every create
        try:
            self._tracker = self._create()
        finally:
            cv2.utils.logging.setLogLevel(previous)
        self._box = tuple(float(v) for v in box)
        self._tracker.init(frame, tuple(int(round(v)) for v in box))

    def update(self, frame: np.ndarray) -> TrackResult:
        ok, box = self._tracker.update(frame)
        if ok:
            self._box = tuple(float(v) for v in box)
        score = float(self._tracker.getTrackingScore()) if hasattr(self._tracker, "getTrackingScore") else float("nan")
        return TrackResult(self._box, score, not ok)  # type: ignore[arg-type]


def _model_files(name: str, paths: tuple[Path | None, ...], option: str) -> tuple[str, ...] | str:
    """The model paths as strings, or the reason the peer cannot run."""
    if any(p is None for p in paths):
        return f"not run: model path not given ({option})"
    missing = [str(p) for p in paths if not Path(p).is_file()]  # type: ignore[arg-type]
    if missing:
        return f"not run: {name} model file {missing[0]} not found ({option})"
    return tuple(str(p) for p in paths)


def _opencv_spec(name: str, options: PeerOptions) -> TrackerSpec:
    paths: tuple[str, ...] | str = ()
    if name == "nanotrack":
        paths = _model_files(name, (options.nano_backbone, options.nano_neckhead), "--nano-backbone/--nano-neckhead")
    elif name == "vit":
        paths = _model_files(name, (options.vit_model,), "--vit-model")
    if isinstance(paths, str):
        return TrackerSpec(name, None, paths)
    digests = [file_sha256(p) for p in paths]
    return TrackerSpec(name, functools.partial(OpenCVPeer, name, paths), identity=f"opencv {cv2.__version__} {name} {digests}")


def _onnx_spec(name: str, options: PeerOptions) -> TrackerSpec:
    peer = ONNX_PEERS[name]
    folder = getattr(options, peer.field)
    wanted = f"{peer.option} FOLDER (the folder with {peer.files})"
    if folder is None:
        return TrackerSpec(name, None, f"not run: pass {wanted}")
    factory = functools.partial(peer.tracker, str(folder), peer.config, threads=1)
    try:
        probe = factory()  # loads and checks the graphs once here, before any worker starts
    except WeightsError as exc:
        return TrackerSpec(name, None, f"not run: {exc}; pass {wanted}")
    digests = [file_sha256(p) for p in probe.model_files]
    config = json.dumps(asdict(peer.config), sort_keys=True)
    return TrackerSpec(name, factory, identity=f"{name} onnxruntime {ort.__version__} {digests} {config}")


def _overrides(text: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in filter(None, text.split(",")):
        key, sep, value = item.partition("=")
        if not sep:
            raise SiamTrackError(f"bad option {item!r} in tracker name; use key=value, e.g. siamtrack@scale_num=1")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def weights_digest(path: Path) -> str:
    """sha256 of a weights file, or of the sorted model files (.onnx and their external .bin) of a folder."""
    if not path.is_dir():
        return file_sha256(path)
    files = sorted(p for p in path.iterdir() if p.suffix in (".onnx", ".bin"))
    return hashlib.sha256("".join(file_sha256(p) for p in files).encode()).hexdigest()


def siamtrack_label(weights: str | None, extra: str) -> str:
    """Short display name: 'siamtrack', 'siamtrack:NAME' or 'siamtrack:FILESTEM', plus '@overrides'."""
    label = "siamtrack"
    if weights:
        label += ":" + (Path(weights).stem if (os.sep in weights or weights.endswith((".pth", ".pt"))) else weights)
    return label + (f"@{extra}" if extra else "")


def _siamtrack_run(name: str, weights: str | None, overrides: dict[str, Any], options: PeerOptions) -> TrackerSpec:
    """A spec whose factory builds SiamTracker(weights, **overrides) on one thread, probed once here so a
    bad checkpoint is reported before any worker starts."""
    factory = functools.partial(SiamTracker, weights, device=options.device, backend=options.backend, threads=1,
                                **overrides)
    try:
        probe = factory()
    except (SiamTrackError, ValueError) as exc:
        return TrackerSpec(name, None, f"not run: {exc}")
    models = shipped_models()
    key = weights or ""
    digest = weights_digest(models[key].path if key in models else Path(key))
    config = json.dumps(probe.config.to_dict(), sort_keys=True)
    return TrackerSpec(name, factory, identity=f"siamtrack {digest} {options.backend}/{options.device} {config}")


def _siamtrack_spec(spec: str, options: PeerOptions) -> TrackerSpec:
    head, _, extra = spec.partition("@")
    weights = head.partition(":")[2] or None
    name = siamtrack_label(weights, extra)
    try:
        overrides = _overrides(extra)  # checked against the model's own loop config when probed
    except (SiamTrackError, ValueError, TypeError) as exc:
        return TrackerSpec(name, None, f"not run: {exc}")
    return _siamtrack_run(name, weights, overrides, options)


def _lightfc_spec(options: PeerOptions) -> TrackerSpec:
    """LightFC's graphs on siamtrack's engine and centre-head loop (boxes equal to LightFC's own loop's)."""
    if options.lightfc_dir is None:
        return TrackerSpec("lightfc", None, "not run: pass --lightfc-dir FOLDER (the folder with lightfc_template.onnx, "
                                            "lightfc_track.onnx and lightfc_weights.bin)")
    return _siamtrack_run("lightfc", str(options.lightfc_dir), {}, options)


def _split_names(names: str) -> list[str]:
    """Split on commas, except inside a siamtrack name's key=value list: "siamtrack@a=1,b=2,csrt" is two trackers."""
    items: list[str] = []
    for part in (p.strip() for p in names.split(",")):
        if items and "@" in items[-1] and "=" in part and not part.startswith("siamtrack"):
            items[-1] += "," + part
        else:
            items.append(part)
    return items


def parse_trackers(names: str | list[str], options: PeerOptions = PeerOptions()) -> list[TrackerSpec]:
    """Specs for comma-separated tracker names, in the given order; unknown names are an error."""
    items = [n for n in (_split_names(names) if isinstance(names, str) else [n.strip() for n in names]) if n]
    if not items:
        raise SiamTrackError("no trackers given; pass e.g. --trackers siamtrack,csrt,kcf")
    specs: list[TrackerSpec] = []
    for item in items:
        if item == "siamtrack" or item.startswith(("siamtrack:", "siamtrack@")):
            spec = _siamtrack_spec(item, options)
        elif item.lower() in OPENCV_PEERS:
            spec = _opencv_spec(item.lower(), options)
        elif item.lower() in ONNX_PEERS:
            spec = _onnx_spec(item.lower(), options)
        elif item.lower() == "lightfc":
            spec = _lightfc_spec(options)
        else:
            raise SiamTrackError(f"unknown tracker {item!r}; choose siamtrack[:WEIGHTS][@key=value] or one of "
                                 f"{', '.join((*OPENCV_PEERS, *ONNX_PEERS, 'lightfc'))}")
        if any(s.name == spec.name for s in specs):
            raise SiamTrackError(f"tracker {spec.name!r} is listed twice; give each tracker once")
        specs.append(spec)
    return specs
