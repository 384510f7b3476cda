"""Trainer throughput against a minimal hand-written PyTorch loop: same model, data and batch.

    python benchmarks/train_throughput.py [--epochs 3] [--size 64] [--threads 2] [--repeats 5] [--device cpu]
                                          [--resume-every-minutes 5]

The trainer's figure counts the wall time of its epoch loop except the validation passes,
which the minimal loop does not do: per-step loss checks, progress bars, history,
checkpoints and MLflow logging are all inside it; resume.pt is written as ``--resume-every-minutes`` says
(default: the params' 5 minutes, so not in runs this short; 0: every epoch, as the tests do). Runs alternate,
so drift in machine speed hits both alike; the ratio is the median over pairs. Target: ratio >= 0.95. Both
run on one device, ``--device`` (default: the CPU; ``cuda`` for a GPU, where the trainer uses its AMP and
memory format and the minimal loop plain float32, as a newcomer's would).
"""

from __future__ import annotations

import copy
import os
import statistics
import tempfile
import time
from pathlib import Path

import _common as bench
import pandas as pd
import torch
import yaml
from segmentation_models_pytorch.losses import DiceLoss
from torch.utils.data import DataLoader

from segbench import paths
from segbench.apps.cli import main as segbench
from segbench.config import dataset_params, validate_params
from segbench.data.dataset import SegmentationDataset, augmentation
from segbench.data.processed import Processed
from segbench.models import build_model
from segbench.tracking import Tracker
from segbench.training.trainer import seed_everything, train_pair

REPO = Path(__file__).resolve().parents[1]


def minimal_loop(params: dict, data: Processed, epochs: int, device: torch.device) -> float:
    """Images per second of the plainest training loop over the same inputs."""
    recipe = params["train"]
    seed_everything(0)
    mean, std = data.normalisation(data.indices("train"))
    dataset = SegmentationDataset(data, data.indices("train"), mean, std, augmentation(recipe["augment"]))
    loader = DataLoader(dataset, batch_size=recipe["batch_size"], shuffle=True)
    model = build_model(params["architectures"]["smp_unet"]).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=recipe["lr"], weight_decay=recipe["weight_decay"])
    loss_fn = DiceLoss("binary")
    model.train()
    start = time.perf_counter()
    for _ in range(epochs):
        for batch in loader:
            loss = loss_fn(model(batch["image"].to(device)), batch["mask"].to(device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return len(dataset) * epochs / (time.perf_counter() - start)


def trainer_run(params: dict, data_dirs, epochs: int, out: Path, tracker: Tracker, device: torch.device) -> float:
    """Images per second of segbench's trainer, validation excluded."""
    p = copy.deepcopy(params)
    p["train"].update(epochs=epochs, early_stopping_patience=None)  # resume_every_minutes: as given
    summary = train_pair("smp_unet", "dice", p, *data_dirs, out, tracker=tracker, device=str(device))
    history = pd.read_csv(out / "timing.csv")
    n_train = int((pd.read_csv(data_dirs[1])["subset"] == "train").sum())
    # the epoch loop's wall time (checkpoints, history, MLflow included) less the validation passes
    return n_train * epochs / (summary["train_seconds"] - float(history["val_seconds"].sum()))


def main() -> None:
    parser = bench.parser(__doc__, epochs=1, size=32, repeats=1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:<k>: both loops run there")
    parser.add_argument("--resume-every-minutes", type=float, default=None,
                        help="the trainer's train.resume_every_minutes (default: the params'; 0: every epoch)")
    args = bench.parse(parser)
    print(bench.heading(__doc__.splitlines()[0]))
    device = torch.device(args.device)
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        os.chdir(tmp)
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["preprocess"]["size"] = args.size
        Path("params.yaml").write_text(yaml.safe_dump(params))
        for stage in ("download", "preprocess", "split"):
            segbench([stage])
        params = dataset_params(validate_params(params), "synthetic")
        if args.resume_every_minutes is not None:
            params["train"]["resume_every_minutes"] = args.resume_every_minutes
        data_dirs = (paths.processed_dir("synthetic"), paths.split_csv("synthetic"))
        data = Processed.load(*data_dirs)
        tracker = Tracker("synthetic", "benchmark", uri=f"sqlite:///{tmp}/mlflow.db")
        minimal, trainer = [], []
        for i in range(args.repeats):  # interleaved, so drift in machine speed hits both alike
            minimal.append(minimal_loop(params, data, args.epochs, device))
            trainer.append(trainer_run(params, data_dirs, args.epochs, Path(tmp, f"run{i}", "smp_unet__dice"), tracker,
                                       device))
    ratios = sorted(t / m for t, m in zip(trainer, minimal))
    print(f"smp Unet-resnet18, {args.size}x{args.size}, batch {params['train']['batch_size']}, "
          f"{args.epochs} epochs, {args.threads} threads, on {device}, {args.repeats} interleaved pairs, "
          f"resume.pt every {params['train']['resume_every_minutes']:g} min")
    print(f"minimal loop : median {statistics.median(minimal):6.1f} images/s  "
          f"(runs: {', '.join(f'{v:.1f}' for v in minimal)})")
    print(f"trainer      : median {statistics.median(trainer):6.1f} images/s  "
          f"(runs: {', '.join(f'{v:.1f}' for v in trainer)})")
    print(f"ratio        : median {statistics.median(ratios):.3f} of the pairs "
          f"(range {ratios[0]:.3f}-{ratios[-1]:.3f}; target >= 0.95)")


if __name__ == "__main__":
    main()
