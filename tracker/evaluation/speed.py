"""Speed benchmark: siamtrack against its peers (cv2.TrackerNano, CSRT, KCF, ...), each in its own process.

The instrument, and why:
- Every (tracker, thread regime, round) runs in a **fresh spawned process** (tracker/evaluation/speed_worker.py):
  one library's thread settings, pools or caches can never reach another's row. Each row records the
  settings its process found on entry and while timed, so the report shows that nothing leaked.
- Three **thread regimes** side by side: 1 thread each, 2 threads each, and each library's own default
  (siamtrack: the cores other processes leave free; OpenCV: its own pool size).
- Within a process the frames are in memory and ``passes`` timed passes follow a warm-up: the best pass
  counts (the least disturbed). Rounds repeat every row in rotated order; the median over rounds is reported.
- **Ratios are paired by round**: the rows of one regime run back to back in each round, and a ratio is the
  median over rounds of that round's fps ratio. A shared VM's multi-thread speed swings up to 2x for tens of
  seconds for every library alike (measured: cv2.TrackerNano at 2 threads 280-570 fps within one run); a
  ratio of medians taken over different rounds compares one library's fast spell with another's slow one.
- Per-stage times of siamtrack (crop, backbone, head, post) show where a frame goes, and "graphs alone"
  (backbone + head, timed alone in the same process) is the ceiling the whole tracker is compared with.
- ``targets``: MultiTracker rows with N targets against N independent instances of each peer, in updates/s.
"""
from __future__ import annotations

import functools
import json
import multiprocessing as mp
import os
import platform
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Callable

import cv2
import numpy as np
import torch

from ..datasets import load_dataset
from ..engine import resolve_device
from ..errors import DeviceError
from ..families import loop_config
from ..model_zoo import resolve, shipped_models
from ..tracking import SiamTracker
from .flops import ModelFlops, model_flops, onnx_flops
from .peers import PeerOptions, parse_trackers
from .speed_worker import REGIMES, STAGES, Job, Timing, regime_threads, run_job

PEERS = ("nanotrack", "csrt", "kcf")
MULTI_PEERS = ("nanotrack",)  # peers that get N-target rows too (CSRT at 32 targets would take minutes)


def default_trackers() -> str:
    """Every shipped model, then the peers."""
    models = [f"siamtrack:{n}" for n in sorted(shipped_models()) if n] or ["siamtrack"]
    return ",".join(models + list(PEERS))


@dataclass
class SpeedOptions:
    """What to time; ``trackers`` uses `siamtrack bench` names (siamtrack[:WEIGHTS][@key=value,...],
    nanotrack, csrt, kcf); every siamtrack entry is timed once per backend in ``backends``, on ``device``
    (the peers always run on CPU). ``regimes``: thread counts ("1", "2", ...) or "default"."""

    sequence: Path
    trackers: str | list[str] = ""  # a list keeps commas inside @overrides; "" = every shipped model + PEERS
    frames: int = 300
    passes: int = 3
    rounds: int = 3
    regimes: tuple[str, ...] = REGIMES
    backends: tuple[str, ...] = ("onnxruntime",)
    targets: tuple[int, ...] = ()  # MultiTracker rows, e.g. (8, 32)
    multi_frames: int = 60
    peers: PeerOptions = field(default_factory=lambda: PeerOptions(device="cpu"))
    stage_repeats: int = 30
    memory_frames: int = 0
    device: str = "cpu"


@dataclass
class TrackerSpeed:
    """One row: a tracker under one thread regime with ``targets`` objects; medians over rounds."""

    name: str
    regime: str = "1"
    targets: int = 1
    gflop_per_frame: float | None = None
    tracker_fps: float = 0.0  # frames per second; updates per second = tracker_fps * targets
    tracker_fps_rounds: list[float] = field(default_factory=list)
    cpu_ms: float = 0.0
    end_to_end_fps: float = 0.0
    stages: dict[str, Timing] = field(default_factory=dict)
    engine_threads: list[int] = field(default_factory=list)  # siamtrack: the count its engine chose, per round
    pids: list[int] = field(default_factory=list)
    on_entry: list[dict[str, int]] = field(default_factory=list)  # the settings each fresh process found
    while_timed: list[dict[str, int]] = field(default_factory=list)
    error: str | None = None

    @property
    def graphs_ms(self) -> float | None:
        """The frame's network call timed alone (ONNX Runtime: its fused graph; torch: backbone then head):
        the ceiling the tracker's lifecycle is measured against."""
        if not self.stages:
            return None
        return self.stages["graphs"].wall_ms

    @property
    def frame_ms(self) -> float | None:
        return 1000 / self.tracker_fps if self.tracker_fps > 0 else None


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
    trackers: list[TrackerSpeed]
    ratios: dict[str, dict[str, dict[str, float]]]  # "siamtrack row key" -> peer -> regime -> fps ratio
    memory: MemoryRun | None = None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=1, default=str)

    def to_markdown(self) -> str:
        return render_markdown(self)

    def row(self, name: str, regime: str, targets: int = 1) -> TrackerSpeed:
        return next(t for t in self.trackers if (t.name, t.regime, t.targets) == (name, regime, targets))


# ---------------------------------------------------------------- trackers under test

@dataclass(frozen=True)
class _Entry:
    name: str  # the row's label
    tracker: str  # the bench name the worker builds
    backend: str | None
    flops: ModelFlops | None


def _entries(opts: SpeedOptions) -> tuple[list[_Entry], list[TrackerSpeed]]:
    """(runnable entries, rows of those that cannot run); siamtrack once per backend."""
    peer_opts = replace(opts.peers, device=opts.device)
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
            tracker = _bench_name(spec.name, factory)
            for backend in opts.backends:
                entries.append(_Entry(f"{spec.name} [{backend}]", tracker, backend, cost))
        else:
            flops = None
            if spec.name == "nanotrack":
                flops = ModelFlops(onnx_flops(peer_opts.nano_backbone), onnx_flops(peer_opts.nano_neckhead), 0)
            elif spec.name == "vit":  # one stream: template and search go through the whole graph every frame
                flops = ModelFlops(onnx_flops(peer_opts.vit_model), 0, 0)
            entries.append(_Entry(spec.name, spec.name, None, flops))
    return entries, failed


def _bench_name(label: str, factory: functools.partial) -> str:
    """The bench name that rebuilds a siamtrack spec in the worker: its weights argument as given."""
    weights = factory.args[0]
    _, at, extra = label.partition("@")
    return label if weights is None else f"siamtrack:{weights}{at}{extra}"


# ---------------------------------------------------------------- running the jobs

def run_isolated(job: Job) -> dict[str, Any]:
    """``run_job`` in a new spawned process of its own, which then exits."""
    with mp.get_context("spawn").Pool(1) as pool:
        return pool.apply(run_job, (job,))


def _rotated(items: list, k: int) -> list:
    if not items:
        return []
    k %= len(items)
    return items[k:] + items[:k]


def round_order(plan: list[tuple[_Entry, str, int]], k: int) -> list[tuple[_Entry, str, int]]:
    """Round ``k``'s order: the groups of rows compared with each other (same regime and target count) in
    rotated order, and the trackers rotated within each group, which stays contiguous (see the ratios)."""
    groups: dict[tuple[str, int], list[tuple[_Entry, str, int]]] = {}
    for item in plan:
        groups.setdefault((item[1], item[2]), []).append(item)
    return [item for group in _rotated(list(groups.values()), k) for item in _rotated(group, k)]


def _collect(entry: _Entry, regime: str, targets: int, records: list[dict[str, Any]], frames: int) -> TrackerSpeed:
    row = TrackerSpeed(entry.name, regime, targets,
                       gflop_per_frame=entry.flops.per_frame / 1e9 if entry.flops else None)
    row.pids = [r["pid"] for r in records]
    row.on_entry = [r["on_entry"] for r in records]
    row.while_timed = [r["while_timed"] for r in records if "while_timed" in r]
    errors = [r["error"] for r in records if "error" in r]
    if errors:
        row.error = errors[0]
        return row
    updates = frames - 1
    best = [min(p, key=lambda wc: wc[0]) for p in (r["passes"] for r in records)]
    row.tracker_fps_rounds = [updates / wall for wall, _ in best]
    row.tracker_fps = float(np.median(row.tracker_fps_rounds))
    row.cpu_ms = float(np.median([1000 * cpu / updates for _, cpu in best]))
    e2e = [r["end_to_end_fps"] for r in records if "end_to_end_fps" in r]
    row.end_to_end_fps = float(np.median(e2e)) if e2e else 0.0
    row.engine_threads = [r["engine_threads"] for r in records if "engine_threads" in r]
    staged = [r for r in records if "stages" in r]
    if staged:
        row.stages = {k: Timing(float(np.median([r["stages"][k].wall_ms for r in staged])),
                                float(np.median([r["stages"][k].cpu_ms for r in staged]))) for k in STAGES}
    return row


def run_speed(opts: SpeedOptions, log: Callable[[str], None] = print,
              runner: Callable[[Job], dict[str, Any]] | None = None) -> SpeedReport:
    """Every row in its own process, rounds in rotated order; ``runner`` runs one job (default
    :func:`run_isolated`; :func:`~tracker.evaluation.speed_worker.run_job` stays in-process and loses the
    isolation, which the rows' ``on_entry`` settings then show)."""
    runner = runner or run_isolated
    for regime in opts.regimes:
        regime_threads(regime)  # a bad regime fails before any work
    load_before = os.getloadavg()
    seq = load_dataset(Path(opts.sequence).parent, names=[Path(opts.sequence).name])[0]
    entries, failed = _entries(opts)
    frames = min(opts.frames, len(seq))
    multi_frames = min(opts.multi_frames, frames)
    plan = [(e, r, 1) for r in opts.regimes for e in entries]
    plan += [(e, r, n) for n in opts.targets for r in opts.regimes for e in entries
             if e.backend is not None or e.tracker in MULTI_PEERS]
    records: dict[tuple[str, str, int], list[dict[str, Any]]] = {(e.name, r, n): [] for e, r, n in plan}
    log(f"timing {len(entries)} trackers x {len(opts.regimes)} thread regimes (+ {len(opts.targets)} target counts), "
        f"{opts.rounds} rounds, each in its own process, on {frames} frames of {seq.name}; load {load_before[0]:.1f}")
    memory: MemoryRun | None = None
    memory_asked = False
    for rnd in range(opts.rounds):
        for entry, regime, targets in round_order(plan, rnd):
            n_frames = frames if targets == 1 else multi_frames
            memory_frames = opts.memory_frames if (not memory_asked and entry.backend and targets == 1) else 0
            memory_asked = memory_asked or bool(memory_frames)
            job = Job(entry.tracker, regime, Path(opts.sequence), n_frames, opts.passes, replace(opts.peers, device=opts.device),
                      entry.backend, targets, opts.stage_repeats if targets == 1 else 0, memory_frames, targets == 1)
            record = runner(job)
            records[entry.name, regime, targets].append(record)
            if "memory" in record:
                rss = record["memory"]
                memory = MemoryRun(entry.name, memory_frames, rss, rss[-1][1] - rss[max(0, len(rss) // 10 - 1)][1])
            log(f"round {rnd + 1}: {entry.name}, {regime} thread(s), {targets} target(s): "
                + (record.get("error") or f"{(n_frames - 1) / min(w for w, _ in record['passes']):.1f} fps"))
    rows = [_collect(e, r, n, records[e.name, r, n], frames if n == 1 else multi_frames) for e, r, n in
            sorted(plan, key=lambda p: (p[2], [x.name for x in entries].index(p[0].name), opts.regimes.index(p[1])))]
    options = {**asdict(opts), "sequence": f"{seq.name}", "frames": frames, "multi_frames": multi_frames,
               "trackers": [e.name for e in entries]}
    siamtrack = {e.name for e in entries if e.backend is not None}
    return SpeedReport(machine_info(opts.device), options, load_before, os.getloadavg(), rows + failed,
                       _ratios(rows, siamtrack), memory)


def paired_ratio(ours: TrackerSpeed, peer: TrackerSpeed) -> float:
    """Median over rounds of the same round's fps ratio (rows of one round ran back to back). Rows without an
    error have one positive fps per round, so the two lists pair up."""
    return float(np.median(np.asarray(ours.tracker_fps_rounds) / np.asarray(peer.tracker_fps_rounds)))


def _ratios(rows: list[TrackerSpeed], siamtrack: set[str]) -> dict[str, dict[str, dict[str, float]]]:
    """siamtrack fps / peer fps, per regime, between rows with the same target count, paired by round."""
    ok = [r for r in rows if r.error is None and r.tracker_fps > 0]
    siam = [r for r in ok if r.name in siamtrack]
    peers = [r for r in ok if r.name not in siamtrack]
    out: dict[str, dict[str, dict[str, float]]] = {}
    for s in siam:
        key = s.name if s.targets == 1 else f"{s.name} x{s.targets}"
        for p in (p for p in peers if p.targets == s.targets and p.regime == s.regime):
            out.setdefault(key, {}).setdefault(p.name, {})[s.regime] = paired_ratio(s, p)
    return out


# ---------------------------------------------------------------- the run's context

def machine_info(device: str) -> dict[str, Any]:
    import onnxruntime
    model = platform.processor() or "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    flags = ""
    if cpuinfo.is_file():
        lines = cpuinfo.read_text().splitlines()
        names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
        model = names[0] if names else model
        flags = next((line for line in lines if line.startswith("flags")), "")
    return {"cpu": model, "cores": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
            "avx512": "avx512f" in flags, "os": platform.platform(), "python": platform.python_version(),
            "torch": torch.__version__, "opencv": cv2.__version__, "onnxruntime": onnxruntime.__version__,
            "gpu": _gpu_name(device)}


def _gpu_name(device: str) -> str:
    """The GPU siamtrack ran on, with torch's CUDA version, or why none was measured."""
    try:
        dev = resolve_device(device)
    except DeviceError as exc:  # each siamtrack row then says "not run: ..." too
        return f"none ({exc})"
    if dev.type != "cuda":
        return "not measured (CPU run)"
    return f"{torch.cuda.get_device_name(dev)} (CUDA {torch.version.cuda})"


def write_speed_report(opts: SpeedOptions, json_path: Path, markdown_path: Path,
                       log: Callable[[str], None] = print) -> str:
    """Run, write the JSON and Markdown reports, return the Markdown."""
    report = run_speed(opts, log)
    for path, text in ((json_path, report.to_json()), (markdown_path, report.to_markdown())):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return report.to_markdown()


def bench_speed(dataset: Path, sequences: list[str] | None, trackers: str, peers: PeerOptions, out: Path,
                device: str) -> str:
    """``siamtrack bench DATASET --speed``: time on the first of ``sequences`` (default: the dataset's
    first sequence) and write ``out``/speed.json and speed.md."""
    name = sequences[0] if sequences else load_dataset(dataset)[0].name
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    opts = SpeedOptions(Path(dataset) / name, trackers=trackers, peers=peers, device=device)
    return write_speed_report(opts, Path(out) / "speed.json", Path(out) / "speed.md",
                              log=lambda m: print(m, file=sys.stderr))


# ---------------------------------------------------------------- report

def _fmt(v: float | None, digits: int = 1) -> str:
    return "-" if v is None else f"{v:.{digits}f}"


def _threads_seen(row: TrackerSpeed) -> str:
    """What the row ran with: OpenCV's pool while timed, and siamtrack's engine threads."""
    if not row.while_timed:
        return "-"
    cv = sorted({s["cv2_threads"] for s in row.while_timed})
    text = f"OpenCV {'/'.join(map(str, cv))}"
    engine = sorted(set(row.engine_threads))
    return text + (f", engine {'/'.join(map(str, engine))}" if engine else "")


def render_markdown(report: SpeedReport) -> str:
    """Three tables: one target (fps per regime and ratios), siamtrack's stages, and N-target updates/s."""
    m, o = report.machine, report.options
    regimes = list(o["regimes"])
    label = {r: ("1 thread" if r == "1" else f"{r} threads") if r != "default" else "default" for r in regimes}
    single = [t for t in report.trackers if t.targets == 1]
    names = list(dict.fromkeys(t.name for t in single))
    peers = list(dict.fromkeys(p for r in report.ratios.values() for p in r))
    entry_settings = sorted({(s["cv2_threads"], s["torch_threads"]) for t in report.trackers for s in t.on_entry})
    lines = [
        f"Machine: {m['cpu']}, {m['cores']} cores{' (AVX-512)' if m.get('avx512') else ''}, {m['os']}; torch {m['torch']}, "
        f"OpenCV {m['opencv']}, onnxruntime {m['onnxruntime']}; GPU: {m['gpu']}.",
        f"Run: {o['frames']} frames of {o['sequence']}; every tracker x thread regime in its own fresh process, best of "
        f"{o['passes']} passes per process, median of {o['rounds']} rounds in rotated order (ratios: the median of each "
        f"round's ratio, the rows of one regime run back to back); load average (1 min) "
        f"{report.load_before[0]:.1f} before, {report.load_after[0]:.1f} after. Every process started with OpenCV/torch "
        f"threads {', '.join(f'{a}/{b}' for a, b in entry_settings) or '-'} (nothing leaks from one row into the next).",
        "",
        "| tracker | GFLOP/frame |" + "".join(f" fps, {label[r]} |" for r in regimes)
        + "".join(f" x {p}, {label[r]} |" for p in peers for r in regimes) + f" threads seen ({label[regimes[-1]]}) |",
        "|---|---|" + "---|" * (len(regimes) * (1 + len(peers)) + 1),
    ]
    for name in names:
        rows = {t.regime: t for t in single if t.name == name}
        first = next(iter(rows.values()))
        if first.error is not None and all(t.error for t in rows.values()):
            lines.append(f"| {name} | {first.error} |" + " |" * (len(regimes) * (1 + len(peers)) + 1))
            continue
        ratio = report.ratios.get(name, {})
        cells = "".join(f" {_fmt(rows[r].tracker_fps) if r in rows and not rows[r].error else '-'} |" for r in regimes)
        cells += "".join(f" {_fmt(ratio.get(p, {}).get(r), 2)} |" for p in peers for r in regimes)
        lines.append(f"| {name} | {_fmt(first.gflop_per_frame, 3)} |{cells} {_threads_seen(rows.get(regimes[-1], first))} |")
    staged = [t for t in single if t.stages]
    if staged:
        lines += ["", "siamtrack's stages (wall ms, each timed alone in the row's process), against the graphs alone "
                      "(the frame's whole network call: ONNX Runtime runs one fused graph, torch the backbone then the head; "
                      "backbone and head are the same network as two static graphs): a tracker / graphs ratio of 1.15 "
                      "or less means the lifecycle costs little.", "",
                  "| tracker | regime | crop | backbone | head | post | graphs alone | tracker ms/frame | tracker / graphs "
                  "| graphs GFLOP/s | end-to-end fps |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for t in staged:
            s = t.stages
            gflops = t.gflop_per_frame / (t.graphs_ms / 1000) if t.gflop_per_frame and t.graphs_ms else None
            lines.append(f"| {t.name} | {label[t.regime]} | " + " | ".join(f"{s[k].wall_ms:.2f}" for k in ("crop", "backbone", "head", "post"))
                         + f" | {t.graphs_ms:.2f} | {_fmt(t.frame_ms, 2)} | {_fmt(t.frame_ms / t.graphs_ms, 2)} | "
                         f"{_fmt(gflops, 0)} | {_fmt(t.end_to_end_fps)} |")
    multi = [t for t in report.trackers if t.targets > 1]
    if multi:
        lines += ["", f"Many targets ({o['multi_frames']} frames): target updates per second, siamtrack's MultiTracker "
                      "(one batched forward per frame) against as many independent peer instances.", "",
                  "| tracker | targets |" + "".join(f" updates/s, {label[r]} |" for r in regimes)
                  + "".join(f" x {p}, {label[r]} |" for p in peers for r in regimes),
                  "|---|---|" + "---|" * (len(regimes) * (1 + len(peers)))]
        for name, n in dict.fromkeys((t.name, t.targets) for t in multi):
            rows = {t.regime: t for t in multi if (t.name, t.targets) == (name, n)}
            ratio = report.ratios.get(f"{name} x{n}", {})
            cells = "".join(f" {_fmt(rows[r].tracker_fps * n, 0) if r in rows and not rows[r].error else (rows[r].error if r in rows else '-')} |"
                            for r in regimes)
            cells += "".join(f" {_fmt(ratio.get(p, {}).get(r), 2)} |" for p in peers for r in regimes)
            lines.append(f"| {name} | {n} |{cells}")
    if report.memory is not None:
        mem = report.memory
        lines += ["", f"Memory: {mem.tracker}, {mem.frames} updates: RSS {mem.rss_mb[0][1]:.0f} -> "
                      f"{mem.rss_mb[-1][1]:.0f} MB; growth after the first 10 %: {mem.growth_mb:+.1f} MB."]
    return "\n".join(lines) + "\n"
