"""GPU check of siamtrack in one call on a lent CUDA machine (issue 14): tests on cuda, speed, 64 targets.

Driven by tools/gpu_check.sh through tools/gpu_check.py (read the .sh header first). Subcommands:
  run --out DIR [--dry-run]   every step under one time budget; DIR/gpu_check.json and .md are rewritten
                              after each step, so a run cut short still leaves its results
  env --json PATH             torch, CUDA, cuDNN, GPU name and the other packages, as JSON
  transfer --json PATH        the engine's crop upload / response download against plain copies
This module imports only the standard library at module level, and tools/gpu_check.py runs it from its file
rather than through the package: it must report before the package's wheels are installed, and even where
the package (torch, cv2, numba) fails to import. What it measures is the simple eager path (no CUDA graphs,
no torch.compile).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[2]
TOOL = Path("tools") / "gpu_check.py"  # the entry point, relative to REPO
CARRY = ".gpu_carry"  # made here by `bash tools/gpu_check.sh --prepare`, carried to the device by `run`
CARRY_LIMIT_MIB = 64  # the working tree and the carried paths together, per call
RUN_CALL = {"command": "PYTHONUNBUFFERED=1 bash tools/gpu_check.sh", "carry": [CARRY], "timeout_s": 360}
BUDGET_S = 270  # the whole run, install to last report, stays under 5 minutes
REPORT_RESERVE_S = 10  # kept back for the last report
MIN_STEP_S = 10  # a step with less time left than this is skipped, not started
LOG_TAIL = 2000  # characters of each step's output kept in the JSON
SPEED_SEQUENCE = "vot_car1"
MULTI_TARGETS = (1, 64)
PATH_SEQUENCES = Path("shared") / "data" / "sequences"
PATH_BOX_MODELS = [Path("shared") / "reference" / f"nanotrack_{v}" / f"nanotrack_{v}_state_dict.pth" for v in ("v2", "v3")]


@dataclass
class Step:
    """One command of the check; ``reason`` set means it cannot run (status 'skipped')."""

    name: str
    why: str
    argv: list[str]
    timeout_s: int
    env: dict[str, str] = field(default_factory=dict)
    reason: str = ""


@dataclass
class StepResult:
    name: str
    why: str
    command: str
    timeout_s: int
    status: str = "pending"  # pending, dry-run, ok, failed, timeout, skipped
    rc: int | None = None
    seconds: float = 0.0
    log_tail: str = ""


def shipped_specs(repo: Path) -> list[str]:
    """`siamtrack:NAME` for every model in weights/registry.json (the SiamFC family)."""
    registry = repo / "weights" / "registry.json"
    if not registry.is_file():
        return []
    return [f"siamtrack:{name}" for name in sorted(json.loads(registry.read_text())["models"])]


def plan(repo: Path, work: Path, python: str) -> list[Step]:
    """The steps, most important first. They run in ``repo``, so carried paths are relative to it (short
    commands in the report); what they write goes to the scratch folder ``work``."""
    carry = Path(CARRY)
    site = work / "site"
    wheels = sorted(str(p.relative_to(repo)) for p in (repo / carry / "wheels").glob("*.whl"))
    sequence = carry / PATH_SEQUENCES / SPEED_SEQUENCE
    box_models = [carry / p for p in PATH_BOX_MODELS if (repo / carry / p).is_file()]
    tests_env = {"SIAMTRACK_TEST_DEVICE": "cuda", "SIAMTRACK_SHARED": str(repo / carry / "shared")}

    def missing(what: str) -> str:
        return f"{what} not in {CARRY}/ (run `bash tools/gpu_check.sh --prepare` where pip works, then carry {CARRY})"

    def speed(name: str, specs: list[str], none: str, why: str) -> Step:
        argv = [python, "tools/speed.py", "--device", "cuda", "--backend", "torch", "--sequence", str(sequence),
                "--frames", "300", "--passes", "3", "--rounds", "1", "--regimes", "default", "--trackers", ",".join(specs),
                "--json", str(work / f"{name}.json"), "--markdown", str(work / f"{name}.md")]
        reason = none if not specs else "" if (repo / sequence).is_dir() else missing(f"sequence {SPEED_SEQUENCE}")
        return Step(name, why, argv, 75, reason=reason)

    return [
        Step("install", "the package's missing dependencies from carried wheels (nothing can be fetched there)",
             [python, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile", "--no-cache-dir",
              "--upgrade", "--target", str(site), *wheels], 60, reason="" if wheels else missing("wheels")),
        Step("imports", "the package and got10k import with the machine's own torch, cv2 and onnxruntime",
             [python, "-c", "import tracker, tracker.evaluation.toolkit; print(tracker.__file__)"], 60),
        Step("tests", "every test with the `device` fixture (backend, engine, multi-target, transfer) on cuda",
             [python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "device", "--continue-on-collection-errors",
              "--junitxml", str(work / "pytest.xml"), "tests"], 100, env=tests_env),
        speed("speed_siamfc", shipped_specs(repo), "weights/registry.json lists no models",
              "tracker-only fps, one target, every shipped model (SiamFC family)"),
        speed("speed_box", [f"siamtrack:{p}" for p in box_models], missing("the NanoTrack state dicts"),
              "tracker-only fps, one target, the carried NanoTrack state dicts (box-regression family)"),
        Step("multi", "target-updates/s with 64 targets in one MultiTracker (and 64 independent trackers)",
             [python, "tools/multi_bench.py", "--device", "cuda", "--backend", "torch",
              "--targets", *map(str, MULTI_TARGETS), "--frames", "8", "--out", str(work / "multi")], 75),
        Step("transfer", "pinned uint8 crop upload and response download against plain copies",
             [python, str(TOOL), "transfer", "--device", "cuda", "--json", str(work / "transfer.json")], 40),
    ]


def run_step(step: Step, env: dict[str, str], timeout_s: float, log: Path) -> tuple[str, int | None]:
    """Run in its own process group, output to ``log``; at the timeout the whole group is killed."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(step.argv, cwd=REPO, env={**env, **step.env}, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return "timeout", None
    return ("ok" if rc == 0 else "failed"), rc


def _kill_group(proc: subprocess.Popen) -> None:
    """SIGTERM to the step's own process group, 5 s to exit, then SIGKILL to whatever of it is left."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


def run_all(steps: list[Step], budget_s: float, dry_run: bool, work: Path,
            on_step: Callable[[list[StepResult]], None]) -> list[StepResult]:
    """Run the steps in order within ``budget_s``; ``on_step`` sees the results after each one."""
    results = [StepResult(s.name, s.why, shlex.join(s.argv), s.timeout_s) for s in steps]
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(work / "site"), str(REPO), os.environ.get("PYTHONPATH")]))}
    deadline = time.monotonic() + budget_s - REPORT_RESERVE_S
    for step, result in zip(steps, results):
        left = deadline - time.monotonic()
        if dry_run:
            result.status, result.log_tail = "dry-run", step.reason
        elif step.reason or left < MIN_STEP_S:
            result.status, result.log_tail = "skipped", step.reason or f"no time left ({left:.0f} s of the budget)"
        else:
            timeout = min(step.timeout_s, left)
            print(f"gpu_check: {step.name} (up to {timeout:.0f} s)", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            log = work / f"{step.name}.log"
            result.status, result.rc = run_step(step, env, timeout, log)
            result.seconds = round(time.monotonic() - t0, 1)
            result.log_tail = log.read_text(errors="replace")[-LOG_TAIL:]
            print(f"gpu_check: {step.name} {result.status} in {result.seconds} s", file=sys.stderr, flush=True)
        on_step(results)
    return results


# ---------------------------------------------------------------- what the steps wrote

def _load(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def junit_summary(junit: Path) -> dict[str, Any] | None:
    """Counts and failures from pytest's JUnit XML."""
    try:
        root = ET.parse(junit).getroot()
    except (OSError, ET.ParseError):
        return None
    counts = {"passed": 0, "failed": 0, "skipped": 0}
    failures = []
    for case in root.iter("testcase"):
        bad = case.find("failure")
        if bad is None:
            bad = case.find("error")
        if bad is not None:
            counts["failed"] += 1
            message = (bad.get("message") or "").strip()
            failures.append({"test": f"{case.get('classname')}::{case.get('name')}",
                             "message": message.splitlines()[0][:300] if message else ""})
        elif case.find("skipped") is not None:
            counts["skipped"] += 1
        else:
            counts["passed"] += 1
    return {**counts, "failures": failures}


def speed_rows(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """One row per tracker of a tools/speed.py JSON report."""
    if not report:
        return []
    rows = []
    for t in report["trackers"]:
        stages = {k: round(v["wall_ms"], 3) for k, v in t.get("stages", {}).items()}
        rows.append({"tracker": t["name"], "regime": t.get("regime"), "tracker_fps": round(t["tracker_fps"], 1),
                     "end_to_end_fps": round(t["end_to_end_fps"], 1), "cpu_ms": round(t["cpu_ms"], 2),
                     "stages_wall_ms": stages, "gflop_per_frame": t.get("gflop_per_frame"), "error": t.get("error")})
    return rows


def multi_rows(report: dict[str, Any] | None) -> list[dict[str, Any]]:
    """tools/multi_bench.py rows plus target-updates per second, batched and independent."""
    if not report:
        return []
    return [{**r, "target_updates_per_s": round(1000 * r["targets"] / r["batched_ms"]),
             "independent_target_updates_per_s": round(1000 * r["targets"] / r["independent_ms"])}
            for r in report["rows"]]


def carry_contents(repo: Path) -> dict[str, Any]:
    """What the carried folder holds, and its size against the per-call limit."""
    carry = repo / CARRY
    files = [p for p in carry.rglob("*") if p.is_file()] if carry.is_dir() else []
    return {"folder": CARRY, "present": carry.is_dir(), "mib": round(sum(p.stat().st_size for p in files) / 2 ** 20, 1),
            "limit_mib": CARRY_LIMIT_MIB, "wheels": sorted(p.name for p in (carry / "wheels").glob("*.whl")),
            "sequences": sorted(p.name for p in (carry / PATH_SEQUENCES).glob("*") if p.is_dir()),
            "box_models": [str(p) for p in PATH_BOX_MODELS if (carry / p).is_file()]}


def build_report(mode: str, env: dict[str, Any] | None, steps: list[StepResult], work: Path, started: float,
                 budget_s: float) -> dict[str, Any]:
    return {
        "schema": "siamtrack-gpu-check/1", "mode": mode,
        "elapsed_s": round(time.monotonic() - started, 1), "budget_s": budget_s,
        "run_call": RUN_CALL, "carry": carry_contents(REPO), "environment": env,
        "measured_path": "eager PyTorch: no CUDA graphs, no torch.compile; crops cross as uint8 from pinned "
                         "buffers (non_blocking), become float channels_last on the GPU; cuDNN at torch's defaults "
                         "(TF32 convolutions)",
        "steps": [asdict(s) for s in steps],
        "tests": junit_summary(work / "pytest.xml"),
        "speed": {"siamfc": speed_rows(_load(work / "speed_siamfc.json")), "box": speed_rows(_load(work / "speed_box.json"))},
        "multi": multi_rows(_load(work / "multi" / "results.json")),
        "transfer": _load(work / "transfer.json"),
    }


# ---------------------------------------------------------------- Markdown

def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(title: str, header: list[str], rows: list[list[Any]]) -> list[str]:
    """A Markdown section with its table (numbers right-aligned), or 'not run' when there are no rows."""
    lines = ["", f"## {title}", ""]
    if not rows:
        return lines + ["not run"]
    align = ["---:" if all(isinstance(r[i], (int, float)) for r in rows) else "---" for i in range(len(header))]
    return lines + [f"| {' | '.join(header)} |", f"|{'|'.join(align)}|"] + \
        [f"| {' | '.join(_cell(c) for c in row)} |" for row in rows]


def _speed_cells(family: str, row: dict[str, Any]) -> list[Any]:
    if row["error"]:
        return [family, row["tracker"], row["error"], "", "", ""]
    st = row["stages_wall_ms"]
    stages = " / ".join(f"{st[k]:.2f}" for k in ("crop", "backbone", "head", "post")) if st else "-"
    return [family, row["tracker"], row["tracker_fps"], row["end_to_end_fps"], row["cpu_ms"], stages]


def render_markdown(r: dict[str, Any]) -> str:
    env = r["environment"] or {}
    gpu = env.get("gpu") or "none visible to torch"
    lines = [
        "# siamtrack GPU check", "",
        f"Mode: {r['mode']}; {r['elapsed_s']} s of a {r['budget_s']} s budget.",
        f"GPU: {gpu} (compute {env.get('capability', '-')}, {env.get('gpu_memory_gib', '-')} GiB, driver "
        f"{env.get('driver', '-')}); torch {env.get('torch', '-')}, CUDA {env.get('torch_cuda', '-')}, cuDNN "
        f"{env.get('cudnn', '-')}; Python {env.get('python', '-')}; onnxruntime {env.get('onnxruntime', '-')} "
        f"({', '.join(env.get('onnxruntime_providers', [])) or '-'}); OpenCV {env.get('opencv', '-')}; "
        f"numba {env.get('numba', '-')}; {env.get('cpu_cores', '-')} CPU cores.",
        f"Measured path: {r['measured_path']}.",
        f"Device call: `run(command=\"{r['run_call']['command']}\", carry={json.dumps(r['run_call']['carry'])}, "
        f"timeout_s={r['run_call']['timeout_s']})`; carried {r['carry']['folder']}: {r['carry']['mib']} MiB "
        f"({len(r['carry']['wheels'])} wheels, sequences {', '.join(r['carry']['sequences']) or 'none'}, "
        f"{len(r['carry']['box_models'])} box-family models).",
    ]
    steps = []
    for s in r["steps"]:
        status = s["status"] + (f" (rc {s['rc']})" if s["status"] == "failed" else "")
        status += f": {s['log_tail']}" if s["status"] in ("skipped", "dry-run") and s["log_tail"] else ""
        steps.append([s["name"], status, s["seconds"], s["why"], f"`{s['command']}`"])
    lines += _table("Steps", ["step", "status", "seconds", "what", "command"], steps)
    t = r["tests"]
    lines += ["", "## Tests on cuda", "",
              "not run" if t is None else f"{t['passed']} passed, {t['failed']} failed, {t['skipped']} skipped."]
    lines += [f"- `{f['test']}`: {_cell(f['message'])}" for f in (t or {}).get("failures", [])]
    lines += _table("Tracker-only speed, one target (torch on cuda)",
                    ["family", "tracker", "tracker fps", "end-to-end fps", "CPU ms/frame",
                     "crop / backbone / head / post ms (wall)"],
                    [_speed_cells(family, row) for family in ("siamfc", "box") for row in r["speed"][family]])
    lines += _table("MultiTracker (torch on cuda)",
                    ["targets", "batched ms/frame", "target-updates/s", "independent ms/frame",
                     "independent target-updates/s", "speedup", "max box diff px"],
                    [[m["targets"], m["batched_ms"], m["target_updates_per_s"], m["independent_ms"],
                      m["independent_target_updates_per_s"], m["speedup"], round(m["max_box_diff_px"], 3)]
                     for m in r["multi"]])
    lines += _table("Host <-> device copies", ["copy", "batch", "plain ms", "engine ms", "plain / engine", "same values"],
                    [[x["what"], x["batch"], x["plain_ms"], x["engine_ms"], x["ratio"], x["equal"]]
                     for x in (r["transfer"] or {}).get("rows", [])])
    return "\n".join(lines) + "\n"


def write_report(out: Path, report: dict[str, Any]) -> None:
    """Both files, each written whole (temp file, then rename): an interrupted run never leaves half a file."""
    out.mkdir(parents=True, exist_ok=True)
    for name, text in (("gpu_check.json", json.dumps(report, indent=1)), ("gpu_check.md", render_markdown(report))):
        tmp = out / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(out / name)


def collect_logs(work: Path, steps: list[StepResult], out: Path) -> None:
    """Every step's output (up to 1 MB each) in one file beside the report: the reply holds only the output's end."""
    logs = [(s, work / f"{s.name}.log") for s in steps if (work / f"{s.name}.log").is_file()]
    if not logs:
        return
    with open(out / "gpu_check.log", "w") as log:
        for s, path in logs:
            log.write(f"===== {s.name}: {s.status} in {s.seconds} s\n$ {s.command}\n")
            log.write(path.read_text(errors="replace")[-1_000_000:] + "\n")


# ---------------------------------------------------------------- subcommands

def environment() -> dict[str, Any]:
    """The machine as the steps see it; imported here, in a child process, so a hanging CUDA init is bounded."""
    import platform

    import cv2
    import numba
    import numpy
    import onnxruntime
    import torch
    cuda = torch.cuda.is_available()
    info: dict[str, Any] = {
        "python": platform.python_version(), "executable": sys.executable, "torch": torch.__version__,
        "torch_cuda": torch.version.cuda, "cuda_available": cuda, "gpu_count": torch.cuda.device_count() if cuda else 0,
        "gpu": None, "numpy": numpy.__version__, "opencv": cv2.__version__, "numba": numba.__version__,
        "onnxruntime": onnxruntime.__version__, "onnxruntime_providers": onnxruntime.get_available_providers(),
        "cpu_cores": os.cpu_count(), "tf32_conv": torch.backends.cudnn.allow_tf32,
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
    }
    if cuda:
        props = torch.cuda.get_device_properties(0)
        info.update(gpu=torch.cuda.get_device_name(0), capability=f"{props.major}.{props.minor}",
                    gpu_memory_gib=round(props.total_memory / 2 ** 30, 1), cudnn=torch.backends.cudnn.version())
        try:
            smi = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                                 capture_output=True, text=True, timeout=20)
            info["driver"] = smi.stdout.strip() or None
        except (OSError, subprocess.TimeoutExpired):
            info["driver"] = None
    return info


def _median_s(fn: Callable[[], Any], sync: Callable[[], None], repeats: int = 30, warmup: int = 5) -> float:
    """Median seconds of ``fn`` and a sync after it (device work is asynchronous)."""
    import statistics
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def _transfer_row(what: str, batch: int, plain: Callable[[], Any], engine: Callable[[], Any],
                  sync: Callable[[], None], equal: bool) -> dict[str, Any]:
    p, e = _median_s(plain, sync), _median_s(engine, sync)
    return {"what": what, "batch": batch, "plain_ms": round(1000 * p, 3), "engine_ms": round(1000 * e, 3),
            "ratio": round(p / e, 2), "equal": equal}


def transfer(device: str) -> dict[str, Any]:
    """The engine's upload/download (tracker.transfer.DeviceIO) against the plain copies it replaced:
    one target's 3 search crops and 64 targets' 192, on random data; values must be equal."""
    import numpy as np
    import torch

    from tracker.engine import resolve_device
    from tracker.transfer import DeviceIO
    dev = resolve_device(device)
    io = DeviceIO(dev)
    sync = (lambda: torch.cuda.synchronize(dev)) if dev.type == "cuda" else (lambda: None)
    rng = np.random.default_rng(0)
    rows = []
    for n in (3, 192):
        crops = rng.integers(0, 256, (n, 255, 255, 3), dtype=np.uint8)
        plain_buf = torch.empty((n, 3, 255, 255), device=dev).to(memory_format=torch.channels_last)

        def plain(crops: np.ndarray = crops, buf: torch.Tensor = plain_buf) -> torch.Tensor:
            return buf.copy_(torch.from_numpy(crops).permute(0, 3, 1, 2))
        equal = bool(torch.equal(plain(), io.upload(crops)))
        rows.append(_transfer_row("upload uint8 crops", n, plain, lambda crops=crops: io.upload(crops), sync, equal))
    for m in (3, 192):
        responses = torch.randn(m, 17, 17, device=dev)
        equal = bool(np.array_equal(responses.cpu().numpy(), io.download(responses)))
        rows.append(_transfer_row("download responses", m, lambda r=responses: r.cpu().numpy(),
                                  lambda r=responses: io.download(r), sync, equal))
    return {"device": str(dev), "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run (or, with --dry-run, only list) every step and write the report")
    run.add_argument("--out", type=Path, required=True, help="folder for gpu_check.json, gpu_check.md, gpu_check.log")
    run.add_argument("--dry-run", action="store_true", help="list the steps without running them (works on CPU)")
    run.add_argument("--budget", type=float, default=BUDGET_S, help="seconds for the whole run")
    sub.add_parser("env").add_argument("--json", type=Path, required=True)
    copies = sub.add_parser("transfer")
    copies.add_argument("--json", type=Path, required=True)
    copies.add_argument("--device", default="cuda", help="cuda[:N], or cpu to rehearse")
    args = parser.parse_args(argv)
    if args.command == "env":
        args.json.write_text(json.dumps(environment(), indent=1))
        return 0
    if args.command == "transfer":
        args.json.write_text(json.dumps(transfer(args.device), indent=1))
        return 0
    started = time.monotonic()
    mode = "dry-run" if args.dry_run else "run"
    with tempfile.TemporaryDirectory(prefix="gpu_check.") as tmp:
        work = Path(tmp)
        probe = Step("env", "", [sys.executable, str(REPO / TOOL), "env", "--json", str(work / "env.json")], 60)
        run_step(probe, dict(os.environ), probe.timeout_s, work / "env.log")
        env = _load(work / "env.json") or {"error": (work / "env.log").read_text(errors="replace")[-LOG_TAIL:]}
        def save(done: list[StepResult]) -> dict[str, Any]:
            report = build_report(mode, env, done, work, started, args.budget)
            write_report(args.out, report)
            collect_logs(work, done, args.out)
            return report

        results = run_all(plan(REPO, work, sys.executable), args.budget - (time.monotonic() - started), args.dry_run,
                          work, save)
        report = save(results)
    print(render_markdown(report))
    bad = [s.name for s in results if s.status in ("failed", "timeout")]
    return 1 if bad or (report["tests"] or {}).get("failed") else 0


if __name__ == "__main__":
    sys.exit(main())
