"""Loading a ported peer's ONNX graphs: every file present, loadable and with the inputs and outputs its loop
feeds and reads, else a one-line WeightsError saying which file and what is wrong.

Each session gets its own thread count (``threads``, one inter-op thread); nothing process-wide is changed.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnxruntime as ort

from ...errors import WeightsError
from ...graph_cache import session_options


@dataclass(frozen=True)
class GraphSpec:
    """What a loop needs of one graph file: input name -> (shape, ONNX type), and the output names it reads."""

    inputs: dict[str, tuple[tuple[int, ...], str]]
    outputs: tuple[str, ...]


def _graph_paths(peer: str, folder: Path, specs: dict[str, GraphSpec]) -> list[Path]:
    """The graph files of ``specs`` in ``folder``, in order; a missing folder or file is a WeightsError."""
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "not found"
        raise WeightsError(f"{peer} model folder {folder} {what}")
    paths = [folder / name for name in specs]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        raise WeightsError(f"{peer} model file {missing[0]} not found")
    return paths


def _describe(inputs: dict[str, tuple[tuple[int, ...], str]], outputs: tuple[str, ...]) -> str:
    return ", ".join(f"{name} {list(shape)} {kind}" for name, (shape, kind) in inputs.items()) + " -> " + ", ".join(outputs)


def _check(path: Path, session: ort.InferenceSession, spec: GraphSpec) -> None:
    inputs = {i.name: (tuple(i.shape), i.type) for i in session.get_inputs()}
    outputs = tuple(o.name for o in session.get_outputs())
    if inputs != spec.inputs or not set(spec.outputs) <= set(outputs):
        raise WeightsError(f"{path} is not the expected graph: it has {_describe(inputs, outputs)}; "
                           f"expected {_describe(spec.inputs, spec.outputs)}")


def load_graphs(peer: str, folder: Path, specs: dict[str, GraphSpec], threads: int) -> dict[Path, ort.InferenceSession]:
    """A CPU session for each graph of ``specs`` in ``folder`` (path -> session, in order), checked against its spec."""
    if not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a whole number of at least 1, got {threads!r}")
    sessions = {}
    for path, spec in zip(_graph_paths(peer, folder, specs), specs.values()):
        try:
            session = ort.InferenceSession(str(path), session_options(threads), providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own types for unreadable or invalid files
            raise WeightsError(f"cannot load {path}: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        _check(path, session, spec)
        sessions[path] = session
    return sessions
