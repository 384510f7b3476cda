"""Decoding images and the resize-and-pad geometry, shared by preprocessing and inference.

As in the thesis (section 3.3.1): the longest side goes to ``size`` with the aspect kept, then
black pixels pad the image to ``size x size`` (centred). ``Geometry`` records where the image
landed, so a prediction on the canvas maps back to the original image.
"""

from __future__ import annotations

import io
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from segbench import SegbenchError


def is_dicom(head: bytes) -> bool:
    """DICOM Part 10 files carry "DICM" after a 128-byte preamble."""
    return head[128:132] == b"DICM"


class TooLarge(SegbenchError):
    """An image with more pixels than the caller accepts (refused before its pixels are decoded)."""


FORMATS = "PNG, JPEG, TIFF, BMP or DICOM"


def _guard(name: str, width: int, height: int, max_pixels: int | None) -> None:
    if max_pixels and width * height > max_pixels:
        raise TooLarge(f"{name}: {width:,} x {height:,} pixels ({width * height / 1e6:.0f} megapixels) is over the "
                       f"limit of {max_pixels / 1e6:.0f} megapixels; downscale it (an X-ray needs no more than "
                       "4,000 px on its longest side) and try again")


def _dicom(source, name: str, mode: str, max_pixels: int | None = None) -> Image.Image:
    """A DICOM file's pixels, windowed to 8 bits (MONOCHROME1 inverted), as a PIL image; its size is checked
    against ``max_pixels`` before its pixel data are decoded."""
    try:
        import pydicom
    except ImportError:
        raise SegbenchError(f"{name}: reading DICOM needs pydicom (pip install pydicom)") from None
    try:
        ds = pydicom.dcmread(source)
        _guard(name, int(ds.Columns), int(ds.Rows), max_pixels)
        pixels = ds.pixel_array.astype(np.float64)
    except TooLarge:
        raise
    except Exception as exc:  # pydicom raises many types on a damaged file
        raise SegbenchError(f"{name}: cannot decode DICOM: {_plain(exc)}") from None
    if pixels.ndim == 3 and pixels.shape[-1] != 3:
        pixels = pixels[0]  # a multi-frame file: its first frame
    low, high = np.percentile(pixels, [0.5, 99.5])
    scaled = np.clip((pixels - low) / max(high - low, 1e-9), 0, 1) * 255
    if getattr(ds, "PhotometricInterpretation", "") == "MONOCHROME1":
        scaled = 255 - scaled
    return Image.fromarray(scaled.astype(np.uint8)).convert(mode)


def load_image(source: Path | bytes, mode: str, scale_to: int | None = None,
               max_pixels: int | None = None) -> tuple[Image.Image, tuple[int, int]]:
    """Decode an image file (a path, or its bytes) EXIF-rotated, in ``mode`` ("L" or "RGB"), whatever its
    type or colour mode.

    A JPEG is decoded near ``scale_to`` on its longest side (draft mode: 1/2^k of the full size),
    so a 4,000 px X-ray is never decoded in full. CMYK, greyscale, palette and 16-bit images are
    converted, as torchvision and smp's Pets example do; the file's content decides its type,
    not its name (a PNG behind ``.jpg`` decodes). DICOM needs pydicom. ``max_pixels`` refuses a larger
    image, DICOM included, before decoding its pixels (PIL's own decompression-bomb guard applies too).

    Returns:
        The image and its original (height, width) after EXIF rotation.

    Raises:
        SegbenchError: a file that does not decode, naming it; ``TooLarge`` for one over ``max_pixels``.
    """
    name = "upload" if isinstance(source, (bytes, bytearray)) else str(source)
    stream = io.BytesIO(source) if isinstance(source, (bytes, bytearray)) else Path(source)
    if isinstance(source, (bytes, bytearray)):
        head = bytes(source[:132])
    else:
        try:
            with open(stream, "rb") as handle:
                head = handle.read(132)
        except OSError as exc:
            raise SegbenchError(f"{name}: cannot read: {exc}") from None
    if is_dicom(head):
        image = _dicom(stream, name, mode, max_pixels)
        return image, (image.height, image.width)
    try:
        image = Image.open(stream)
        w, h = image.size
        _guard(name, w, h, max_pixels)
        if scale_to and image.format == "JPEG":
            scale = scale_to / max(w, h)
            image.draft(mode, (math.ceil(w * scale), math.ceil(h * scale)))
        rotated = ImageOps.exif_transpose(image)
        orig = (h, w) if rotated.size == image.size else (w, h)
        if rotated.mode in ("I;16", "I;16B", "I", "F"):  # 16-bit or float greyscale: stretch to 8 bits
            pixels = np.asarray(rotated, np.float64)
            low, high = pixels.min(), pixels.max()
            rotated = Image.fromarray(((pixels - low) / max(high - low, 1e-9) * 255).astype(np.uint8))
        return rotated.convert(mode), orig
    except UnidentifiedImageError:
        raise SegbenchError(f"{name}: cannot decode image: its content is not a {FORMATS} image, whatever its "
                            "name says") from None
    except Image.DecompressionBombError as exc:
        raise TooLarge(f"{name}: {_plain(exc)}") from None
    except (OSError, SyntaxError, ValueError) as exc:  # PIL's errors for damaged files
        raise SegbenchError(f"{name}: cannot decode image: {_plain(exc)}") from None


def _plain(error: Exception) -> str:
    """An exception's message for people: without Python object reprs such as <_io.BytesIO object at 0x7f...>."""
    return re.sub(r"\s*<[^<>]* at 0x[0-9a-f]+>", "", str(error)).strip() or type(error).__name__


@dataclass(frozen=True)
class Geometry:
    """Where an (orig_h, orig_w) image lands in the (size, size) canvas."""

    size: int
    scale: float
    height: int
    width: int
    pad_top: int
    pad_left: int
    orig_h: int
    orig_w: int

    @classmethod
    def fit(cls, orig_h: int, orig_w: int, size: int) -> Geometry:
        scale = size / max(orig_h, orig_w)
        h, w = max(1, round(orig_h * scale)), max(1, round(orig_w * scale))
        return cls(size, scale, h, w, (size - h) // 2, (size - w) // 2, orig_h, orig_w)

    def place(self, image: Image.Image | np.ndarray, resample: int = Image.Resampling.BILINEAR) -> np.ndarray:
        """Resize ``image`` to (height, width) and zero-pad it: (size, size[, channels]) uint8."""
        if isinstance(image, np.ndarray):
            image = Image.fromarray(image)
        resized = np.asarray(image.resize((self.width, self.height), resample))
        out = np.zeros((self.size, self.size, *resized.shape[2:]), np.uint8)
        out[self.pad_top:self.pad_top + self.height, self.pad_left:self.pad_left + self.width] = resized
        return out

    def crop(self, canvas: np.ndarray) -> np.ndarray:
        """The image's part of a (..., size, size) canvas: (..., height, width)."""
        return canvas[..., self.pad_top:self.pad_top + self.height, self.pad_left:self.pad_left + self.width]

    def restore(self, probabilities: np.ndarray, original: bool = True) -> np.ndarray:
        """Canvas probabilities (K, size, size) -> (K, orig_h, orig_w), bilinearly (or cropped only,
        (K, height, width), with ``original=False``). Probabilities are interpolated before any
        threshold, as nnU-Net resamples its softmax outputs."""
        cropped = self.crop(probabilities)
        if not original or cropped.shape[-2:] == (self.orig_h, self.orig_w):
            return np.ascontiguousarray(cropped)
        import torch  # bilinear on (K, h, w) floats; torch's kernel is the fastest at hand

        tensor = torch.from_numpy(np.ascontiguousarray(cropped, np.float32))[None]
        return torch.nn.functional.interpolate(tensor, size=(self.orig_h, self.orig_w), mode="bilinear",
                                               align_corners=False)[0].numpy()

    @classmethod
    def of(cls, row, size: int) -> Geometry:
        """The geometry recorded in a meta.csv row (orig_h, orig_w, scale, pad_top, pad_left)."""
        g = cls.fit(int(row["orig_h"]), int(row["orig_w"]), size)
        if (g.pad_top, g.pad_left) != (int(row["pad_top"]), int(row["pad_left"])):
            raise SegbenchError(f"meta.csv: {row['sample_id']}: its pads do not match its size; rerun preprocess")
        return g


def normalise(images: np.ndarray, mean: list[float], std: list[float]):
    """uint8 (..., S, S) grey or (..., S, S, C) -> float32 (..., C, S, S), (x / 255 - mean) / std per channel."""
    x = images.astype(np.float32) / 255.0
    if len(mean) == 1:  # grey arrays have no channel axis
        x = x[..., None]
    x = (x - np.asarray(mean, np.float32)) / np.asarray(std, np.float32)
    import torch  # the data readers need no torch

    return torch.from_numpy(np.ascontiguousarray(np.moveaxis(x, -1, -3)))
