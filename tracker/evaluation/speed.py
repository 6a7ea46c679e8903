"""Speed benchmark: siamtrack against OpenCV's CSRT, KCF and NanoTrack on the same frames, in one run.

On a shared machine absolute times are noise, so the result is same-run ratios: trackers run
interleaved in chunks of frames (each keeping its own state), passes repeat in rotated order and
medians are taken. Beside wall-clock fps the CPU time per frame is reported: other processes'
load barely inflates it, so it is the steadier basis for ratios (with one thread it is the
compute time; with N threads it sums them). Per-stage times and the backbone's achieved GFLOP/s
against a matmul peak measured in the same run say where siamtrack's time goes.
"""
from __future__ import annotations

import functools
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch

from ..datasets import Sequence, load_dataset
from ..engine import default_threads, resolve_device
from ..errors import DeviceError
from ..families import loop_config
from ..model_zoo import resolve, shipped_models
from ..tracking import SiamTracker
from .flops import ModelFlops, model_flops, onnx_flops
from .peers import PeerOptions, parse_trackers

PEERS = ("nanotrack", "csrt", "kcf")
STAGES = ("crop", "backbone", "head", "post", "update")


def default_trackers() -> str:
    """Every shipped model, then the peers."""
    models = [f"siamtrack:{n}" for n in sorted(shipped_models()) if n] or ["siamtrack"]
    return ",".join(models + list(PEERS))


@dataclass
class SpeedOptions:
    """What to time; ``trackers`` uses `siamtrack bench` names (siamtrack[:WEIGHTS][@key=value,...],
    nanotrack, csrt, kcf); every siamtrack entry is timed once per backend in ``backends``, on ``device``
    (the peers always run on CPU)."""

    sequence: Path
    trackers: str | list[str] = ""  # a list keeps commas inside @overrides; "" = every shipped model + PEERS
    frames: int = 300
    passes: int = 5
    chunk: int = 20
    backends: tuple[str, ...] = ("onnxruntime", "torch")
    nano_backbone: Path | None = None
    nano_neckhead: Path | None = None
    threads: int = 1  # 0 = each library's default (siamtrack: cores minus load; OpenCV: its own)
    stage_repeats: int = 30
    memory_frames: int = 0
    device: str = "cpu"


@dataclass
class Timing:
    """Median wall-clock and CPU milliseconds of one measured call."""

    wall_ms: float
    cpu_ms: float


@dataclass
class Peak:
    """fp32 matmul GFLOP/s, by wall clock and per CPU-second."""

    wall_gflops: float
    cpu_gflops: float


@dataclass
class TrackerSpeed:
    """One tracker's figures: fps from the medians over passes, stages from the medians over repeats."""

    name: str
    gflop_per_frame: float | None = None
    tracker_fps: float = 0.0
    tracker_fps_passes: list[float] = field(default_factory=list)
    cpu_ms: float = 0.0
    end_to_end_fps: float = 0.0
    stages: dict[str, Timing] = field(default_factory=dict)
    backbone_gflops: float | None = None  # backbone FLOPs / backbone CPU time
    error: str | None = None


@dataclass
class MemoryRun:
    """Resident memory while one tracker runs ``frames`` updates; growth counts from 10 % in."""

    tracker: str
    frames: int
    rss_mb: list[tuple[int, float]]
    growth_mb: float


@dataclass
class SpeedReport:
    machine: dict[str, Any]
    options: dict[str, Any]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]
    matmul_peak: Peak
    trackers: list[TrackerSpeed]
    ratios: dict[str, dict[str, dict[str, float]]]  # siamtrack name -> peer -> {"fps", "cpu"}
    memory: MemoryRun | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=str)

    def to_markdown(self) -> str:
        return render_markdown(self)


# ---------------------------------------------------------------- trackers under test

@dataclass(frozen=True)
class _Entry:
    name: str
    factory: Callable[[], Any]
    flops: ModelFlops | None  # siamtrack entries only


def _entries(opts: SpeedOptions) -> tuple[list[_Entry], list[TrackerSpeed]]:
    """(runnable entries, reports of those that cannot run); siamtrack once per backend at opts.threads."""
    peer_opts = PeerOptions(opts.nano_backbone, opts.nano_neckhead, device=opts.device)
    entries, failed = [], []
    for spec in parse_trackers(opts.trackers or default_trackers(), peer_opts):
        factory = spec.factory
        if factory is None:
            failed.append(TrackerSpeed(spec.name, error=spec.error or "not run"))
        elif isinstance(factory, functools.partial) and factory.func is SiamTracker:
            net, model_overrides, _ = resolve(factory.args[0])
            cfg = loop_config(net.config.family, {**model_overrides, **{k: v for k, v in factory.keywords.items()
                                                                          if k not in ("device", "threads", "backend")}})
            cost = model_flops(net, cfg)
            for backend in opts.backends:
                entries.append(_Entry(f"{spec.name} [{backend}]",
                                      functools.partial(factory, backend=backend, threads=opts.threads or None), cost))
        else:
            flops = None
            if spec.name == "nanotrack":
                flops = ModelFlops(onnx_flops(opts.nano_backbone), onnx_flops(opts.nano_neckhead), 0)
            entries.append(_Entry(spec.name, factory, flops))
    return entries, failed


# ---------------------------------------------------------------- timing

def _timed(fn: Callable[[], Any], repeats: int, warmup: int = 3) -> Timing:
    for _ in range(warmup):
        fn()
    wall, cpu = [], []
    for _ in range(repeats):
        w0, c0 = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c0)
        wall.append(time.perf_counter() - w0)
    return Timing(1000 * float(np.median(wall)), 1000 * float(np.median(cpu)))


def matmul_peak(size: int = 1024, repeats: int = 15) -> Peak:
    """fp32 torch.mm throughput at the current thread setting: the practical compute ceiling."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    out = torch.empty(size, size)
    t = _timed(lambda: torch.mm(a, b, out=out), repeats)
    gflop = 2 * size ** 3 / 1e9
    return Peak(gflop / (t.wall_ms / 1000), gflop / (t.cpu_ms / 1000))


def _rotated(names: list[str], k: int) -> list[str]:
    if not names:  # every tracker failed to load: the report lists why
        return []
    k %= len(names)
    return names[k:] + names[:k]


def time_tracking(factories: dict[str, Callable[[], Any]], frames: list[np.ndarray], box: tuple[float, ...],
                  passes: int, chunk: int) -> dict[str, TrackerSpeed]:
    """Tracker-only fps: each pass builds and inits every tracker, then runs them interleaved chunk by
    chunk over the same in-memory frames; a first, discarded pass over one chunk warms up."""
    names = list(factories)
    out = {n: TrackerSpeed(n) for n in names}
    cpu: dict[str, list[float]] = {n: [] for n in names}
    n_updates = len(frames) - 1
    for p in range(passes + 1):
        live: dict[str, Any] = {}
        for n in _rotated(names, p):
            if out[n].error is not None:
                continue
            try:
                live[n] = factories[n]()
                live[n].init(frames[0], box)
            except Exception as exc:  # a broken tracker is reported, never stops the others
                out[n].error = f"{type(exc).__name__}: {exc}".splitlines()[0]
        wall_t = dict.fromkeys(live, 0.0)
        cpu_t = dict.fromkeys(live, 0.0)
        last = n_updates if p else min(chunk, n_updates)
        for start in range(1, last + 1, chunk):
            batch = frames[start:min(start + chunk, last + 1)]
            for n, tracker in live.items():
                if out[n].error is not None:
                    continue
                w0, c0 = time.perf_counter(), time.process_time()
                try:
                    for frame in batch:
                        tracker.update(frame)
                except Exception as exc:
                    out[n].error = f"{type(exc).__name__}: {exc}".splitlines()[0]
                cpu_t[n] += time.process_time() - c0
                wall_t[n] += time.perf_counter() - w0
        if p:
            for n in (n for n in live if out[n].error is None):
                out[n].tracker_fps_passes.append(n_updates / wall_t[n])
                cpu[n].append(1000 * cpu_t[n] / n_updates)
    for n in names:
        if out[n].tracker_fps_passes:
            out[n].tracker_fps = float(np.median(out[n].tracker_fps_passes))
            out[n].cpu_ms = float(np.median(cpu[n]))
    return out


def time_end_to_end(factories: dict[str, Callable[[], Any]], seq: Sequence, frames: int, passes: int) -> dict[str, float]:
    """Decode + init + track + draw fps over the first ``frames`` frames, median over rotated passes."""
    fps: dict[str, list[float]] = {n: [] for n in factories}
    short = Sequence(seq.name, seq.boxes[:frames], seq.video, seq.frame_files[:frames], n_frames=frames)
    for p in range(passes):
        for n in _rotated(list(factories), p):
            try:
                tracker = factories[n]()
                t0 = time.perf_counter()
                for i, frame in enumerate(short.frames()):
                    if i == 0:
                        tracker.init(frame, short.init_box)
                        continue
                    x, y, w, h = getattr(tracker.update(frame), "box", (0, 0, 0, 0))
                    cv2.rectangle(frame, (int(x), int(y)), (int(x + w), int(y + h)), (0, 255, 0), 2)
                fps[n].append(len(short) / (time.perf_counter() - t0))
            except Exception:  # reported by the tracker-only run
                continue
    return {n: float(np.median(v)) if v else 0.0 for n, v in fps.items()}


def time_stages(tracker: SiamTracker, frame: np.ndarray, repeats: int) -> dict[str, Timing]:
    """Each stage of one update on the same frame and target state, stages interleaved per repeat.
    On CUDA each stage ends with a synchronize: kernels run asynchronously, so the launch alone says nothing."""
    multi = tracker._multi  # a profiler reaches inside on purpose: these are the hot-path pieces
    tid = tracker._id
    target = multi._targets[tid]
    step = multi.step
    size = step.search_size(target)  # the crop size the target's state asks for now
    buf = multi._search_buffer(multi.config.searches_per_target, size)
    kernels = multi._kernels_for((tid,))
    step.search_into(target, frame, buf)
    engine = multi.engine
    feats = engine.features(buf)
    outputs = engine.scores(kernels, feats)
    calls = {"crop": lambda: step.search_into(target, frame, buf), "backbone": lambda: engine.features(buf),
             "head": lambda: engine.scores(kernels, feats),
             "post": lambda: step.propose(target, outputs, size), "update": lambda: tracker.update(frame)}
    if engine.device.type == "cuda":
        calls = {k: (lambda fn=fn: (fn(), torch.cuda.synchronize(engine.device))) for k, fn in calls.items()}
    samples: dict[str, list[Timing]] = {k: [] for k in calls}
    for _ in range(repeats):
        for name, fn in calls.items():
            samples[name].append(_timed(fn, 1, warmup=0))
    return {k: Timing(float(np.median([t.wall_ms for t in v])), float(np.median([t.cpu_ms for t in v])))
            for k, v in samples.items()}


def memory_run(factory: Callable[[], Any], frames: list[np.ndarray], box: tuple[float, ...], count: int,
               samples: int = 20) -> list[tuple[int, float]]:
    """RSS (MB) every count/samples updates over ``count`` frames played forwards and backwards."""
    import psutil
    proc = psutil.Process()
    tracker = factory()
    tracker.init(frames[0], box)
    period = max(1, count // samples)
    cycle = list(range(1, len(frames))) + list(range(len(frames) - 2, 0, -1))
    rss = []
    for i in range(1, count + 1):
        tracker.update(frames[cycle[i % len(cycle)]])
        if i % period == 0:
            rss.append((i, proc.memory_info().rss / 2 ** 20))
    return rss


# ---------------------------------------------------------------- the run

def machine_info(threads: int | str, device: str) -> dict[str, Any]:
    import onnxruntime
    model = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if line.startswith("model name")]
        model = names[0] if names else model
    return {"cpu": model, "cores": os.cpu_count(), "os": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "opencv": cv2.__version__, "onnxruntime": onnxruntime.__version__,
            "threads": threads, "gpu": _gpu_name(device)}


def _gpu_name(device: str) -> str:
    """The GPU siamtrack ran on, with torch's CUDA version, or why none was measured."""
    try:
        dev = resolve_device(device)
    except DeviceError as exc:  # each siamtrack row then says "not run: ..." too
        return f"none ({exc})"
    if dev.type != "cuda":
        return "not measured (CPU run)"
    return f"{torch.cuda.get_device_name(dev)} (CUDA {torch.version.cuda})"


def _load_sequence(path: Path, frames: int) -> tuple[Sequence, list[np.ndarray]]:
    seq = load_dataset(path.parent, names=[path.name])[0]
    decoded = []
    for frame in seq.frames():
        decoded.append(frame)
        if len(decoded) >= frames:
            break
    return seq, decoded


def run_speed(opts: SpeedOptions, log: Callable[[str], None] = print) -> SpeedReport:
    """Everything in ONE run: tracker-only and end-to-end fps side by side, then stages and memory."""
    if opts.threads:
        torch.set_num_threads(opts.threads)
        cv2.setNumThreads(opts.threads)
        threads: int | str = opts.threads
    else:
        threads = f"defaults: siamtrack {default_threads()} (cores minus load), OpenCV {cv2.getNumThreads()}"
    load_before = os.getloadavg()
    seq, frames = _load_sequence(Path(opts.sequence), opts.frames)
    entries, failed = _entries(opts)
    factories = {e.name: e.factory for e in entries}
    log(f"timing {len(entries)} trackers on {len(frames)} frames of {seq.name}, {opts.passes} passes, "
        f"threads={threads}, load {load_before[0]:.1f}")
    results = time_tracking(factories, frames, seq.init_box, opts.passes, opts.chunk)
    e2e = time_end_to_end(factories, seq, len(frames), opts.passes)
    peak = matmul_peak()
    memory = None
    for e in entries:
        r = results[e.name]
        r.end_to_end_fps = e2e[e.name]
        r.gflop_per_frame = e.flops.per_frame / 1e9 if e.flops else None
        if r.error is None and isinstance(e.factory, functools.partial) and e.factory.func is SiamTracker:
            tracker = e.factory()
            tracker.init(frames[0], seq.init_box)
            tracker.update(frames[1])
            r.stages = time_stages(tracker, frames[1], opts.stage_repeats)
            backbone_s = r.stages["backbone"].cpu_ms / 1000  # can be 0 on CUDA, where the host may sleep in the sync
            r.backbone_gflops = e.flops.backbone / backbone_s / 1e9 if backbone_s > 0 else None
            if opts.memory_frames and memory is None:
                log(f"memory: {opts.memory_frames} updates of {e.name}")
                rss = memory_run(e.factory, frames, seq.init_box, opts.memory_frames)
                memory = MemoryRun(e.name, opts.memory_frames, rss, rss[-1][1] - rss[max(0, len(rss) // 10 - 1)][1])
    siam = [e.name for e in entries if e.name in results and results[e.name].stages]
    peers = [e.name for e in entries if e.name not in siam and results[e.name].tracker_fps > 0]
    ratios = {s: {p: {"fps": results[s].tracker_fps / results[p].tracker_fps, "cpu": results[p].cpu_ms / results[s].cpu_ms}
                  for p in peers} for s in siam}
    options = {**asdict(opts), "sequence": f"{seq.name} ({frames[0].shape[1]}x{frames[0].shape[0]})", "frames": len(frames),
               "trackers": [e.name for e in entries]}
    return SpeedReport(machine_info(threads, opts.device), options, load_before, os.getloadavg(), peak,
                       list(results.values()) + failed, ratios, memory)


def write_speed_report(opts: SpeedOptions, json_path: Path, markdown_path: Path,
                       log: Callable[[str], None] = print) -> str:
    """Run, write the JSON and Markdown reports, return the Markdown table."""
    report = run_speed(opts, log)
    for path, text in ((json_path, report.to_json()), (markdown_path, report.to_markdown())):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return report.to_markdown()


def bench_speed(dataset: Path, sequences: list[str] | None, trackers: str, nano_backbone: Path | None,
                nano_neckhead: Path | None, out: Path, device: str) -> str:
    """``siamtrack bench DATASET --speed``: time on the first of ``sequences`` (default: the dataset's
    first sequence) and write ``out``/speed.json and speed.md."""
    name = sequences[0] if sequences else load_dataset(dataset)[0].name
    opts = SpeedOptions(Path(dataset) / name, trackers=trackers, nano_backbone=nano_backbone, nano_neckhead=nano_neckhead,
                        device=device)
    return write_speed_report(opts, Path(out) / "speed.json", Path(out) / "speed.md",
                              log=lambda m: print(m, file=sys.stderr))


# ---------------------------------------------------------------- report

def _fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def render_markdown(report: SpeedReport) -> str:
    """The README table: one row per tracker; siamtrack rows add stage times and ratios to each peer."""
    m, o = report.machine, report.options
    peers = sorted({p for r in report.ratios.values() for p in r}, key=lambda p: [t.name for t in report.trackers].index(p))
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['os']}; torch {m['torch']}, OpenCV {m['opencv']}, "
        f"onnxruntime {m['onnxruntime']}; threads: {m['threads']}; GPU: {m['gpu']}.",
        f"Run: {o['frames']} frames of {o['sequence']}, {o['passes']} passes (median), trackers interleaved in "
        f"chunks of {o['chunk']} frames; load average (1 min) {report.load_before[0]:.1f} before, "
        f"{report.load_after[0]:.1f} after; fp32 matmul peak in the same run {report.matmul_peak.cpu_gflops:.0f} "
        f"GFLOP/s per CPU-second ({report.matmul_peak.wall_gflops:.0f} by wall clock).",
        "Stage times and backbone GFLOP/s are CPU time (steadier than wall clock on a loaded machine); "
        "ratios are siamtrack / peer, by tracker-only fps and by CPU time per frame.",
        "",
        "| tracker | GFLOP/frame | tracker fps | CPU ms/frame | end-to-end fps | crop / backbone / head / post ms "
        "| backbone GFLOP/s (% of peak) |" + "".join(f" x {p} (fps / CPU) |" for p in peers),
        "|" + "---|" * (7 + len(peers)),
    ]
    for t in report.trackers:
        if t.error is not None:
            lines.append(f"| {t.name} | {t.error} |" + " |" * (5 + len(peers)))
            continue
        stages = " / ".join(f"{t.stages[k].cpu_ms:.2f}" for k in STAGES[:4]) if t.stages else "-"
        bb = "-" if t.backbone_gflops is None else \
            f"{t.backbone_gflops:.0f} ({100 * t.backbone_gflops / report.matmul_peak.cpu_gflops:.0f} %)"
        ratio = report.ratios.get(t.name, {})
        cells = "".join(f" {ratio[p]['fps']:.2f} / {ratio[p]['cpu']:.2f} |" if p in ratio else " - |" for p in peers)
        lines.append(f"| {t.name} | {_fmt(t.gflop_per_frame, 3)} | {t.tracker_fps:.1f} | {t.cpu_ms:.2f} | "
                     f"{t.end_to_end_fps:.1f} | {stages} | {bb} |" + cells)
    if report.memory is not None:
        mem = report.memory
        lines += ["", f"Memory: {mem.tracker}, {mem.frames} updates: RSS {mem.rss_mb[0][1]:.0f} -> "
                      f"{mem.rss_mb[-1][1]:.0f} MB; growth after the first 10 %: {mem.growth_mb:+.1f} MB."]
    return "\n".join(lines) + "\n"
