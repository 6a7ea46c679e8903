"""The training loop: one process, or many under ``torchrun`` (DistributedDataParallel).

Determinism is by construction: pair ``i`` of epoch ``e`` is a pure function of (seed, e, i), each
optimiser step consumes a fixed slice of those indices, and the saved state holds model, optimiser,
scheduler, adapter, position and torch RNG. So a run killed at any point and resumed from its last
state file ends with exactly the weights of the uninterrupted run.

Batches are split over ``world_size x accumulate`` "virtual ranks": rank r's micro-batch m holds
the samples of virtual rank r*accumulate+m. A single process with ``--accumulate 2`` therefore sees
the same BatchNorm groups and gradient as two DDP processes with ``--accumulate 1``.

The loop is family-neutral: what differs between SiamFC and the box-regression family (the student,
its feature adapter, the loss) sits behind siamfc_train.SiamFCTraining, box_train.BoxTraining and
centre_train.CentreTraining;
the options that build a run are in :mod:`tracker.training.config`.
"""
from __future__ import annotations

import json
import os
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler

from ..engine import resolve_device
from ..errors import SiamTrackError
from ..models import Network, save_checkpoint
from ..models.checkpoints import atomic_save, read_file, weights_digest
from .box_train import BoxTraining
from .centre_train import CentreTraining
from .config import Setup, TrainConfig
from .data import PairDataset, build_cache, collate, read_image_boxes, training_sequences
from .distill import Teacher, to_input
from .ensemble import CentreMapTeacher, EnsembleTeacher, LightTrackTeacher
from .siamfc_train import SiamFCTraining

STATE_FILE = "state.pth"
# each family's training: its student, feature adapter and loss
FAMILIES = {training.family: training for training in (SiamFCTraining, BoxTraining, CentreTraining)}


class StudentNet(nn.Module):
    """The trained network plus its training-only adapter, as ONE module for DistributedDataParallel."""

    def __init__(self, net: Network, adapter: nn.Module | None) -> None:
        super().__init__()
        self.net = net
        self.adapter = adapter

    def forward(self, z: torch.Tensor, x: torch.Tensor):
        """(maps as net.outputs gives them, (fz, fx, adapted fz, adapted fx)); no adapter: (fz, fx, None, None)."""
        fz, fx = self.net.embed(z), self.net.embed(x)
        maps = tuple(self.net.outputs(fz, fx))
        if self.adapter is None:
            return maps, (fz, fx, None, None)
        return maps, (fz, fx, self.adapter(fz), self.adapter(fx))


def _distributed() -> tuple[int, int]:
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1



def freeze_stages(net: Network, n: int) -> list[nn.Module]:
    """The first ``n`` backbone stages, which --freeze holds (checked against the backbone's depth)."""
    stages = net.backbone.stage_modules()
    if not 0 <= n <= len(stages):
        raise SiamTrackError(f"--freeze must be 0..{len(stages)}, got {n}")
    return stages[:n]


def make_optimizer(cfg: TrainConfig, model: StudentNet) -> torch.optim.Optimizer:
    """Groups backbone (--lr), neck (--neck-lr: whatever lies between backbone and head) and head +
    adapter (--head-lr). Frozen stages stay in their group: they get no gradient, so no update,
    until --unfreeze-epoch, and the optimiser state keeps one layout for resume."""
    net = model.net
    backbone = list(net.backbone.parameters())
    head = list(net.head.parameters()) + (list(model.adapter.parameters()) if model.adapter else [])
    outside = {id(p) for p in backbone + head}
    neck = [p for p in net.parameters() if id(p) not in outside]
    groups = [{"params": backbone, "lr": cfg.lr}, {"params": neck, "lr": cfg.neck_lr or cfg.lr},
              {"params": head, "lr": cfg.head_lr or cfg.lr}]
    groups = [g for g in groups if g["params"]]
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
    raise SiamTrackError(f"unknown optimizer {cfg.optimizer!r}; choose sgd or adamw")


def log_decay(total_steps: int, lr: float, lr_end: float):
    """Factor for step t of a log-spaced decay from ``lr`` to ``lr_end`` (SiamFC's schedule)."""
    ratio = lr_end / lr
    return lambda t: ratio ** (min(t, total_steps - 1) / max(total_steps - 1, 1))


def load_data(setup: Setup, rank: int) -> PairDataset:
    cfg = setup.train
    if not cfg.sequences and not cfg.extra_sequences and not cfg.images:
        raise SiamTrackError("no training data: pass --sequences FOLDER, --extra-sequences FOLDERS and/or --images FOLDER")
    seqs = training_sequences(cfg.sequences, cfg.split, cfg.extra_sequences.split(","), print if rank == 0 else None)
    images = read_image_boxes(cfg.images) if cfg.images else []
    if rank == 0:
        build_cache(cfg.cache, seqs, images, setup.cache, progress=cfg.progress)
    if dist.is_initialized():
        dist.barrier()
    cache = build_cache(cfg.cache, seqs, images, setup.cache, progress=False)
    return PairDataset(cache, setup.pairs, setup.augment, seed=cfg.seed, length=cfg.pairs_per_epoch)


def build_teacher(t: TrainConfig, device: torch.device) -> Teacher | EnsembleTeacher | None:
    """--teacher, joined by LightTrack's graphs (--teacher-lighttrack) and a centre-family network
    (--teacher-centre) in a map ensemble (box family only)."""
    joining = [option for option, value in (("--teacher-lighttrack", t.teacher_lighttrack),
                                            ("--teacher-centre", t.teacher_centre)) if value]
    if joining and (t.family != "box" or not t.teacher):
        raise SiamTrackError(f"{joining[0]} joins a box-family --teacher; pass --family box and --teacher "
                             "(a NanoTrack state dict, say) too")
    if not t.teacher:
        return None
    network = Teacher(t.teacher, device, t.family)
    if not joining:
        return network
    # one thread: torch's OpenMP workers spin between the student's ops, and a second ONNX Runtime thread
    # fighting them made a training step ~13x slower on 2 cores (measured); 1 thread costs ~20 ms per pair
    members = [LightTrackTeacher(t.teacher_lighttrack, 1)] if t.teacher_lighttrack else []
    members += [CentreMapTeacher(t.teacher_centre, device)] if t.teacher_centre else []
    return EnsembleTeacher(network, members)


class Trainer:
    """Builds model, data and optimiser from a :class:`Setup`; :meth:`run` trains (resumably)."""

    def __init__(self, setup: Setup) -> None:
        self.setup = cfg = setup
        t = cfg.train
        if t.threads:
            torch.set_num_threads(t.threads)
        self.rank, self.world = _distributed()
        self.device = resolve_device(t.device)
        if self.device.type == "cuda" and self.world > 1:
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if t.batch_size % (self.world * t.accumulate):
            raise SiamTrackError(f"--batch-size {t.batch_size} must be a multiple of processes x --accumulate "
                                 f"({self.world} x {t.accumulate})")
        self.micro = t.batch_size // (self.world * t.accumulate)
        self.family = FAMILIES[t.family](setup)
        torch.manual_seed(t.seed)
        net, self.loop_overrides = self.family.build()
        self.freezable = freeze_stages(net, t.freeze)
        self.teacher = build_teacher(t, self.device)
        self.model = StudentNet(net, self.family.adapter(net, self.teacher)).to(self.device)
        self.frozen: list[nn.Module] | None = None
        self.ddp: nn.parallel.DistributedDataParallel | None = None
        self._freeze_for(0)
        self.optimizer = make_optimizer(t, self.model)
        self.steps_per_epoch = t.pairs_per_epoch // t.batch_size
        if self.steps_per_epoch < 1:
            raise SiamTrackError(f"--pairs-per-epoch {t.pairs_per_epoch} is smaller than --batch-size {t.batch_size}")
        self.total_steps = self.steps_per_epoch * t.epochs
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, log_decay(self.total_steps, t.lr, t.lr_end))
        self.dataset = load_data(cfg, self.rank)
        self.epoch, self.step = 0, 0
        self.out = Path(t.out)

    # ---- state -------------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"setup": self.setup.to_dict(), "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "epoch": self.epoch, "step": self.step, "torch_rng": torch.get_rng_state(),
                "model_config": self.model.net.config.to_dict()}

    def save_state(self) -> None:
        if self.rank == 0:
            atomic_save(self.state(), self.out / STATE_FILE)

    def resume(self, path: str | os.PathLike) -> None:
        """Continue exactly where the state file left off."""
        state = read_file(path)
        try:
            self.model.load_state_dict(state["model"])
            self.optimizer.load_state_dict(state["optimizer"])
            self.scheduler.load_state_dict(state["scheduler"])
            self.epoch, self.step = int(state["epoch"]), int(state["step"])
            torch.set_rng_state(state["torch_rng"])
        except (KeyError, RuntimeError, ValueError) as exc:
            raise SiamTrackError(f"{path} is not a resumable state of this configuration ({exc}); "
                                 "resume with the options of the original run") from None

    def save_model(self, path: Path, **metadata: Any) -> None:
        if self.rank == 0:
            meta = {"trained_by": "siamtrack train", "epoch": self.epoch, "step": self.step, "world_size": self.world,
                    "setup": self.setup.to_dict(), **metadata}
            save_checkpoint(self.model.net, path, metadata=meta, tracker_config=self.loop_overrides)

    # ---- training ----------------------------------------------------------------------------
    def _indices(self, epoch: int, sub: int) -> list[int]:
        """Dataset indices for virtual rank ``sub`` this epoch, from the current step on."""
        t = self.setup.train
        virtual = self.world * t.accumulate
        sampler = DistributedSampler(self.dataset, num_replicas=virtual, rank=self.rank * t.accumulate + sub,
                                     shuffle=False, drop_last=True)
        sampler.set_epoch(epoch)
        idx = list(sampler)[: self.steps_per_epoch * self.micro]
        return idx[self.step * self.micro:]

    def _loaders(self, epoch: int) -> list[DataLoader]:
        self.dataset.set_epoch(epoch)
        t = self.setup.train
        return [DataLoader(self.dataset, batch_size=self.micro, sampler=self._indices(epoch, m),
                           collate_fn=collate, num_workers=t.workers, persistent_workers=False)
                for m in range(t.accumulate)]

    def loss(self, batch) -> tuple[torch.Tensor, dict[str, float]]:
        """The family's loss for one micro-batch (the teacher, if any, sees the same crops)."""
        z_np, x_np, boxes, pos = batch
        order = self.model.net.config.input_order
        z, x = to_input(z_np, self.device, order), to_input(x_np, self.device, order)
        module = self.ddp or self.model
        maps, features = module(z, x)
        teach = None
        if self.teacher is not None:
            tz = z if self.teacher.input_order == order else z.flip(1)
            tx = x if self.teacher.input_order == order else x.flip(1)
            teach = self.teacher(tz, tx, z_np, x_np)
        return self.family.loss(maps, features, teach, torch.from_numpy(boxes).to(self.device),
                                torch.from_numpy(pos).to(self.device), self.model.net.total_stride)

    def _freeze_for(self, epoch: int) -> None:
        """Hold the --freeze stages until --unfreeze-epoch. DDP syncs only the parameters that needed
        gradients when it wrapped the model, so it is wrapped again whenever that set changes."""
        t = self.setup.train
        frozen = [] if t.unfreeze_epoch and epoch >= t.unfreeze_epoch else self.freezable
        if frozen == self.frozen:
            return
        for stage in self.freezable:
            for p in stage.parameters():
                p.requires_grad_(not any(stage is f for f in frozen))
        self.frozen = frozen
        if self.world > 1:
            self.ddp = nn.parallel.DistributedDataParallel(self.model)

    def _train_mode(self) -> None:
        self.model.train()
        for stage in self.frozen:
            stage.eval()

    def train_step(self, micro_batches: list) -> float:
        t = self.setup.train
        self._train_mode()
        self.optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for m, batch in enumerate(micro_batches):
            last = m == len(micro_batches) - 1
            ctx = self.ddp.no_sync() if (self.ddp is not None and not last) else nullcontext()
            with ctx:
                loss, _ = self.loss(batch)
                (loss / t.accumulate).backward()
            total += float(loss.detach()) / t.accumulate
        self.optimizer.step()
        self.scheduler.step()
        return total

    def run(self, resume: str | os.PathLike | None = None) -> Path:
        """Train to the end (or ``max_minutes``); returns the folder holding the checkpoints."""
        t = self.setup.train
        if resume:
            self.resume(resume)
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "setup.json").write_text(json.dumps(self.setup.to_dict(), indent=1))
        from tqdm import tqdm
        bar = tqdm(total=self.total_steps * t.batch_size, initial=(self.epoch * self.steps_per_epoch + self.step) * t.batch_size,
                   unit="pair", desc="training", disable=not t.progress or self.rank != 0, dynamic_ncols=True)
        start = last_save = time.monotonic()
        ema = None
        while self.epoch < t.epochs:
            self._freeze_for(self.epoch)
            for micro_batches in zip(*self._loaders(self.epoch)):
                loss = self.train_step(list(micro_batches))
                self.step += 1
                ema = loss if ema is None else 0.95 * ema + 0.05 * loss
                done = time.monotonic() - start
                bar.update(t.batch_size)
                bar.set_postfix(epoch=self.epoch, loss=f"{ema:.4f}", lr=f"{self.scheduler.get_last_lr()[0]:.1e}",
                                refresh=False)
                if time.monotonic() - last_save > t.save_every:
                    self.save_state()
                    last_save = time.monotonic()
                if t.max_minutes and done > 60 * t.max_minutes and self.step < self.steps_per_epoch:
                    self.save_state()
                    bar.close()
                    return self.out
            self.epoch, self.step = self.epoch + 1, 0
            self._sync_buffers()
            self.save_model(self.out / f"epoch_{self.epoch:03d}.pth", loss=ema)
            self.save_state()
            last_save = time.monotonic()
            if t.max_minutes and time.monotonic() - start > 60 * t.max_minutes:
                break
        bar.close()
        return self.out

    def _sync_buffers(self) -> None:
        """Give every rank rank 0's BatchNorm statistics, then check all ranks hold identical models
        (DDP keeps parameters in step; a mismatch means a rank diverged and the run is invalid)."""
        if self.world == 1:
            return
        for buf in self.model.buffers():
            dist.broadcast(buf, 0)
        digests: list[str] = [""] * self.world
        dist.all_gather_object(digests, weights_digest(self.model.state_dict()))
        if len(set(digests)) != 1:
            raise SiamTrackError(f"DDP ranks hold different weights after epoch {self.epoch}: {digests}")


def train(setup: Setup, resume: str | os.PathLike | None = None) -> Path:
    """Train with ``setup``; ``resume`` = a state.pth to continue from (exactly)."""
    try:
        return Trainer(setup).run(resume)
    finally:
        if dist.is_initialized():
            dist.destroy_process_group()
