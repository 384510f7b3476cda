"""Load a trained run and segment images of any size at their original resolution.

One code path for evaluation, ``segbench predict``, the web page and the MLflow model: the
same resize and pad as preprocessing, the run's own normalisation, the mean of the fold
models' probabilities, probabilities resampled to the original size before the threshold,
and the post-processing that evaluation chose on validation images.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from segbench import SegbenchError, paths
from segbench.data.images import Geometry, load_image, normalise
from segbench.io import read_json
from segbench.models import build_model
from segbench.paths import CHECKPOINT
from segbench.predict.outputs import foreground, probabilities, to_labels
from segbench.predict.postprocess import postprocess

__all__ = ["Member", "Predictor", "foreground", "label_map", "load_checkpoint", "probabilities", "to_labels"]


def load_checkpoint(path: Path, map_location="cpu") -> tuple[torch.nn.Module, dict]:
    """A checkpoint's model (eval mode) and its plain values (arch_cfg, mean, std, classes, size, ...).

    ``weights_only=True``: a checkpoint from a DVC remote or an MLflow server holds tensors and plain
    values only, so loading it runs no code.
    """
    if not path.is_file():
        raise SegbenchError(f"{path}: missing; train this run first")
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    model = build_model(checkpoint["arch_cfg"], checkpoint["in_channels"], checkpoint["classes"])
    model.load_state_dict(checkpoint["model"])
    return model.eval(), {k: v for k, v in checkpoint.items() if k != "model"}


def label_map(probabilities: np.ndarray, postprocessing: dict, classes: int) -> np.ndarray:
    """Probabilities (K', H, W) -> the label map (H, W), post-processed as ``postprocessing`` says."""
    return postprocess(to_labels(probabilities), postprocessing["name"], classes, postprocessing.get("min_fraction",
                                                                                                    1e-4))


@dataclass
class Member:
    """One trained model with the normalisation it was trained with."""

    net: torch.nn.Module
    mean: list[float]
    std: list[float]

    def probabilities(self, canvases: np.ndarray) -> torch.Tensor:
        """Canvases (N, S, S[, C]) uint8 -> probabilities (N, K', S, S) float32, on the model's device."""
        dev = next(self.net.parameters()).device
        return probabilities(self.net(normalise(canvases, self.mean, self.std).to(dev)).float())


@dataclass
class Predictor:
    """A trained run: one model, or the mean of a seed's fold models, plus its post-processing.

    Example:
        >>> predictor = Predictor.from_run("results/synthetic/demo/runs/smp_unet__dice_focal/seed0")
        >>> mask, probability = predictor.predict(np.asarray(Image.open("xray.png")))
    """

    members: list[Member]
    size: int
    channels: int
    classes: int
    postprocessing: dict = field(default_factory=lambda: {"name": "none"})
    source: str = ""
    class_names: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.class_names = self.class_names or ["background", *(f"class {c}" for c in range(1, self.classes))]

    @classmethod
    def from_checkpoints(cls, paths: list[Path], postprocessing: dict | None = None, source: str = "",
                         map_location: torch.device | str = "cpu") -> Predictor:
        """The models of ``paths`` on ``map_location`` (a device ``segbench.devices.device`` gave, or the CPU)."""
        members, infos = [], []
        for path in paths:
            net, info = load_checkpoint(path)
            members.append(Member(net.to(map_location), list(np.atleast_1d(info["mean"])),
                                  list(np.atleast_1d(info["std"]))))
            infos.append(info)
        first = infos[0]
        if any((i["size"], i["in_channels"], i["classes"]) != (first["size"], first["in_channels"], first["classes"])
               for i in infos):
            raise SegbenchError(f"{source}: its models differ in input size, channels or classes")
        return cls(members, first["size"], first["in_channels"], first["classes"],
                   postprocessing or {"name": "none"}, source, list(first.get("class_names", [])))

    @classmethod
    def ensemble(cls, folds: list[Predictor], postprocessing: dict, source: str = "") -> Predictor:
        """One predictor averaging the members of ``folds`` (already loaded), with ``postprocessing``."""
        first = folds[0]
        return cls([m for fold in folds for m in fold.members], first.size, first.channels, first.classes,
                   postprocessing, source, first.class_names)

    def to(self, device) -> Predictor:
        """Move every member's weights to ``device``; returns itself."""
        for member in self.members:
            member.net.to(device)
        return self

    @classmethod
    def from_folds(cls, folds: list[Path], postprocessing: dict | None = None, source: str = "",
                   map_location: torch.device | str = "cpu") -> Predictor:
        """The models of trained fold folders: segbench's (``model_best.pt``), or a baseline's (its train.json names
        it; the baseline's module turns each fold into a member, e.g. nnU-Net's own predictor)."""
        trained = read_json(folds[0] / paths.TRAINED) if (folds[0] / paths.TRAINED).is_file() else {}
        if not trained.get("baseline"):
            return cls.from_checkpoints([f / CHECKPOINT for f in folds], postprocessing, source, map_location)
        from segbench.baselines.catalog import BASELINES

        baseline = BASELINES.entry(trained["baseline"]).load()
        names = baseline.class_names(trained)
        return cls([baseline.member(f, map_location) for f in folds], trained["size"], trained["in_channels"],
                   len(names), postprocessing or {"name": "none"}, source, names)

    @classmethod
    def from_run(cls, path: str | Path, map_location: torch.device | str = "cpu") -> Predictor:
        """A fold folder (``.../folds/fold<f>``: one model) or a seed folder (``.../seed<s>``: its folds'
        ensemble), with the post-processing its evaluation chose (none before evaluation)."""
        path = Path(path)
        if (path / paths.TRAINED).is_file():
            folds, evaluated = [path], path.parent.parent / paths.METRICS
        else:
            folds, evaluated = paths.trained_folds(path), path / paths.METRICS
        if not folds:
            raise SegbenchError(f"{path}: no trained model here: expected {paths.TRAINED} (a fold folder) or "
                                f"{paths.FOLD_IN_SEED.format(fold='*')}/{paths.TRAINED} (a seed folder)")
        chosen = read_json(evaluated).get("postprocessing") if evaluated.is_file() else None
        return cls.from_folds(folds, chosen, str(path), map_location)

    @torch.inference_mode()
    def canvas_probabilities(self, canvases: np.ndarray) -> np.ndarray:
        """Preprocessed canvases (N, S, S[, C]) uint8 -> probabilities (N, K', S, S) float32, the members' mean.

        K' = 1 (the foreground's sigmoid) for a binary model, else K (softmax).
        """
        total = None
        for member in self.members:
            p = member.probabilities(canvases).cpu()
            total = p if total is None else total + p
        return (total / len(self.members)).numpy()

    def labels(self, probabilities: np.ndarray, postprocessing: dict | None = None) -> np.ndarray:
        """Probabilities (K', H, W) -> the label map (H, W), post-processed (by ``postprocessing``, else
        the run's own choice)."""
        return label_map(probabilities, postprocessing or self.postprocessing, self.classes)

    @property
    def mode(self) -> str:
        return "L" if self.channels == 1 else "RGB"

    def predict_file(self, source: Path | bytes, max_pixels: int | None = None):
        """(image as decoded, mask, probability) of an image file (a path or its bytes): decoded exactly as
        preprocessing decodes (EXIF rotation, JPEG draft near the model's size, DICOM), predicted at its
        original size."""
        image, original = load_image(source, self.mode, scale_to=self.size, max_pixels=max_pixels)
        mask, probability = self.predict(image, original)
        return image, mask, probability

    def as_input(self, image: np.ndarray | Image.Image) -> Image.Image:
        """Any grey or RGB image as the PIL image the model takes (grey for 1 channel, else RGB)."""
        image = Image.fromarray(image) if isinstance(image, np.ndarray) else image
        return image.convert(self.mode)

    def predict(self, image: np.ndarray | Image.Image,
                original_size: tuple[int, int] | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Segment one image of any size.

        Shape: image (H, W) grey or (H, W, 3) RGB, uint8 -> (mask (H, W) uint8 class ids,
        probability (H, W) float32 of the foreground). ``original_size`` (H, W): the size to return
        when ``image`` was decoded smaller (a JPEG's draft mode, as preprocessing decodes it).
        """
        image = self.as_input(image)
        geometry = Geometry.fit(*(original_size or (image.height, image.width)), self.size)
        probabilities = self.canvas_probabilities(geometry.place(image)[None])[0]
        restored = geometry.restore(probabilities)
        return self.labels(restored), foreground(restored).astype(np.float32)
