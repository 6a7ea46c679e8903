"""Trainer: it learns, resume after a kill is exact, 2-process DDP equals one process, options work.

Runs are tiny (10%-width net, 87/151 crops, a few steps) so each takes seconds.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from test_training_data import write_got10k, write_images
from tracker.cli import build_parser
from tracker.errors import SiamTrackError
from tracker.models import load_checkpoint
from tracker.models.checkpoints import read_file, weights_digest
from tracker.training.trainer import STATE_FILE, Trainer, add_train_arguments, setup_from_args, train

ROOT = Path(__file__).resolve().parents[1]
SIZES = ["--cache-exemplar-size", "87",
         "--cache-instance-size", "151", "--cache-patch-size", "175", "--cache-frame-step", "1"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("train_data")
    return write_got10k(root / "got", n_seq=3, n_frames=8), write_images(root / "imgs")


def tiny_args(data, tmp_path, name, *extra):
    got, imgs = data
    return ["--sequences", str(got), "--split", "", "--images", str(imgs), "--cache", str(tmp_path / "cache"),
            "--out", str(tmp_path / name), "--width", "0.1", "--epochs", "2", "--pairs-per-epoch", "24",
            "--batch-size", "4", "--threads", "1", "--progress", "false", "--lr", "1e-2", *SIZES, *extra]


def setup_of(argv):
    import argparse
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    return setup_from_args(parser.parse_args(argv)), parser.parse_args(argv)


def run_in_process(argv):
    threads = torch.get_num_threads()
    try:
        setup, _ = setup_of(argv)
        return train(setup)
    finally:
        torch.set_num_threads(threads)


def params(path):
    net, _, meta = load_checkpoint(path)
    return {k: v for k, v in net.named_parameters()}, meta


def test_cli_documents_every_option():
    help_text = build_parser().parse_args.__self__._subparsers._group_actions[0].choices["train"].format_help()
    for flag in ("--sequences", "--images", "--init", "--freeze", "--head-lr", "--dropout-after", "--contrastive",
                 "--triplet", "--teacher", "--optimizer", "--lr-end", "--accumulate", "--resume",
                 "--pair-max-gap", "--pair-neg-ratio", "--aug-blur", "--cache-patch-size", "--cache-frame-step"):
        assert flag in help_text
    assert "(default: 0.15)" in help_text and "(default: 100)" in help_text


def test_training_lowers_the_loss_and_writes_loadable_checkpoints(data, tmp_path):
    out = run_in_process(tiny_args(data, tmp_path, "run", "--epochs", "3", "--optimizer", "adamw", "--lr", "3e-3"))
    losses = [read_file(out / f"epoch_{e:03d}.pth")["metadata"]["loss"] for e in (1, 3)]
    assert losses[1] < losses[0]
    net, _, meta = load_checkpoint(out / "epoch_003.pth")
    assert net.config.width == 0.1 and meta["epoch"] == 3 and meta["setup"]["train"]["optimizer"] == "adamw"


def test_resume_after_kill_reproduces_the_uninterrupted_weights(data, tmp_path):
    reference = run_in_process(tiny_args(data, tmp_path, "ref"))
    argv = tiny_args(data, tmp_path, "killed", "--save-every", "0")
    proc = subprocess.Popen([sys.executable, str(ROOT / "tools" / "train.py"), *argv], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    state = tmp_path / "killed" / STATE_FILE
    deadline = time.monotonic() + 120
    while not state.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    assert not (tmp_path / "killed" / "epoch_002.pth").exists()
    setup, args = setup_of(argv)
    threads = torch.get_num_threads()
    try:
        train(setup, resume=state)
    finally:
        torch.set_num_threads(threads)
    a, b = read_file(reference / "epoch_002.pth"), read_file(tmp_path / "killed" / "epoch_002.pth")
    assert a["sha256"] == b["sha256"] == weights_digest(b["state_dict"])


def test_two_process_ddp_equals_one_process_with_the_same_global_batch(data, tmp_path):
    single = run_in_process(tiny_args(data, tmp_path, "single", "--epochs", "1", "--accumulate", "2"))
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(ROOT / "tools" / "train.py"), *tiny_args(data, tmp_path, "ddp", "--epochs", "1")]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    p_single, _ = params(single / "epoch_001.pth")
    p_ddp, meta = params(tmp_path / "ddp" / "epoch_001.pth")
    assert meta["world_size"] == 2     # and the trainer itself checked both ranks hold identical weights
    start, _ = params_of_fresh_net()
    assert any(not torch.allclose(start[k], p_single[k]) for k in start)   # it did train
    for k in p_single:
        assert torch.allclose(p_single[k], p_ddp[k], atol=1e-5, rtol=1e-4), k


def params_of_fresh_net():
    from tracker.config import ModelConfig
    from tracker.models import SiameseNet
    torch.manual_seed(0)
    return dict(SiameseNet(ModelConfig(width=0.1)).named_parameters()), None


def test_freeze_init_and_separate_head_lr(data, tmp_path):
    base = run_in_process(tiny_args(data, tmp_path, "base", "--epochs", "1"))
    argv = tiny_args(data, tmp_path, "tuned", "--epochs", "1", "--init", str(base / "epoch_001.pth"),
                     "--freeze", "2", "--head-lr", "0.5", "--dropout", "0.1", "--dropout-after", "3")
    setup, _ = setup_of(argv)
    trainer = Trainer(setup)
    groups = trainer.optimizer.param_groups
    assert [g["lr"] for g in groups] == [1e-2, 0.5]
    assert trainer.model.net.config.dropout_after == 3
    threads = torch.get_num_threads()
    try:
        trainer.run()
    finally:
        torch.set_num_threads(threads)
    before, _ = params(base / "epoch_001.pth")
    after, _ = params(tmp_path / "tuned" / "epoch_001.pth")
    frozen = [k for k in before if k.startswith(("backbone.conv1.", "backbone.conv2."))]
    assert frozen and all(torch.equal(before[k], after[k]) for k in frozen)
    assert not torch.equal(before["backbone.conv3.0.weight"], after["backbone.conv3.0.weight"])
    assert torch.equal(read_file(base / "epoch_001.pth")["state_dict"]["backbone.conv1.1.running_mean"],
                       read_file(tmp_path / "tuned" / "epoch_001.pth")["state_dict"]["backbone.conv1.1.running_mean"])


@pytest.mark.parametrize("extra, message", [
    (["--batch-size", "6", "--accumulate", "4"], "multiple of processes x --accumulate"),
    (["--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'"),
    (["--freeze", "7"], "--freeze must be 0..5"),
    (["--logistic", "0"], "every loss weight is 0"),
])
def test_bad_options_are_one_line_errors(data, tmp_path, extra, message):
    with pytest.raises(SiamTrackError, match=message):
        setup, _ = setup_of(tiny_args(data, tmp_path, "bad", *extra))
        Trainer(setup).run()


def test_contrastive_and_triplet_losses_train_a_cosine_head(data, tmp_path):
    out = run_in_process(tiny_args(data, tmp_path, "metric", "--epochs", "1", "--head", "cosine", "--logistic", "0",
                                   "--contrastive", "1", "--triplet", "1"))
    net, _, _ = load_checkpoint(out / "epoch_001.pth")
    assert net.config.head == "cosine"


def test_publish_registers_a_verified_default_with_tracker_overrides(data, tmp_path, monkeypatch):
    from tracker.model_zoo import resolve
    from tracker.training.publish import publish
    out = run_in_process(tiny_args(data, tmp_path, "pub", "--epochs", "1"))
    shipped = publish(out / "epoch_001.pth", "tiny", "a test model", {"window_influence": 0.3},
                      weights_dir=tmp_path / "weights")
    monkeypatch.setenv("SIAMTRACK_WEIGHTS", str(tmp_path / "weights"))
    net, overrides, meta = resolve(None)
    assert meta["name"] == "tiny" and overrides == {"window_influence": 0.3} and net.config.width == 0.1
    publish(out / "epoch_001.pth", "tiny_fast", "a preset", {"scale_num": 1}, weights_dir=tmp_path / "weights",
            default=False)
    assert resolve(None)[2]["name"] == "tiny" and resolve("tiny_fast")[1] == {"scale_num": 1}
    blob = bytearray(shipped.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    shipped.write_bytes(bytes(blob))
    with pytest.raises(SiamTrackError, match="sha256"):
        resolve("tiny")
    with pytest.raises(SiamTrackError, match="model name"):
        publish(out / "epoch_001.pth", "bad name", "", weights_dir=tmp_path / "weights")
