"""What a prediction says about one image, for people: its lesions, an overlay, a mask file."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image, ImageDraw, ImageFont
from scipy import ndimage

from segbench.metrics.detection import CONNECTIVITY

PALETTE = [(0, 0, 0), (230, 40, 40), (40, 160, 255), (250, 200, 0), (60, 200, 90), (190, 80, 220)]


def colour(label: int) -> tuple[int, int, int]:
    return PALETTE[label % len(PALETTE)] if label < len(PALETTE) else \
        tuple(int(c) for c in np.random.default_rng(label).integers(40, 255, 3))


def lesions(mask: np.ndarray, probability: np.ndarray, class_names: list[str], min_fraction: float) -> list[dict]:
    """Each connected region of each foreground class of at least ``min_fraction`` of the image:
    class, area (px and % of the image), bounding box [x0, y0, x1, y1] (inclusive) and mean probability.

    Shape: mask (H, W) class ids; probability (H, W) of the foreground.
    """
    found = []
    for label in range(1, len(class_names)):
        regions, count = ndimage.label(mask == label, CONNECTIVITY)
        for index, box in enumerate(ndimage.find_objects(regions), start=1):
            region = regions[box] == index
            area = int(region.sum())
            if area < min_fraction * mask.size:
                continue
            found.append({"class": class_names[label], "area_px": area,
                          "area_percent": round(100 * area / mask.size, 4),
                          "bbox": [box[1].start, box[0].start, box[1].stop - 1, box[0].stop - 1],
                          "mean_probability": round(float(probability[box][region].mean()), 4)})
    found.sort(key=lambda lesion: -lesion["area_px"])
    return [{"id": i, **lesion} for i, lesion in enumerate(found, start=1)]


def mask_image(mask: np.ndarray, classes: int) -> Image.Image:
    """The label map as an 8-bit PNG image: class c stored as c * floor(255 / (classes - 1)), so a binary
    mask is 0 and 255."""
    return Image.fromarray((mask.astype(np.uint16) * (255 // max(1, classes - 1))).astype(np.uint8))


def colour_mask(mask: np.ndarray) -> Image.Image:
    """An RGBA image: each foreground class in its colour, opaque; background transparent."""
    rgba = np.zeros((*mask.shape, 4), np.uint8)
    for label in np.unique(mask[mask > 0]):
        rgba[mask == label] = (*colour(int(label)), 255)
    return Image.fromarray(rgba)


def overlay(image: Image.Image, mask: np.ndarray, opacity: float = 0.45) -> Image.Image:
    """``image`` in RGB with the mask's regions tinted and outlined in their class colours."""
    base = image.convert("RGB")
    tint = colour_mask(mask)
    alpha = np.asarray(tint)[..., 3].astype(np.float32) * opacity
    tinted = Image.composite(tint.convert("RGB"), base, Image.fromarray(alpha.astype(np.uint8)))
    outline = mask > 0
    edges = outline & ~ndimage.binary_erosion(outline, iterations=max(1, max(mask.shape) // 400))
    pixels = np.asarray(tinted).copy()
    for label in np.unique(mask[edges]):
        pixels[edges & (mask == label)] = colour(int(label))
    return Image.fromarray(pixels)


def heat(p: np.ndarray) -> np.ndarray:
    """Probabilities in [0, 1] -> RGB uint8 (..., 3): black at 0, through red, to yellow at 1."""
    p = np.clip(p, 0, 1)
    return np.stack([p * 255, p ** 2 * 230, p ** 6 * 60], -1).astype(np.uint8)


def probability_image(probability: np.ndarray) -> Image.Image:
    """The foreground probability as a heat map (``heat``)."""
    return Image.fromarray(heat(probability))


def heat_scale(stops: int = 11) -> list[str]:
    """``heat`` at ``stops`` evenly spaced probabilities, as CSS colours: the page's colour bar."""
    return ["#{:02x}{:02x}{:02x}".format(*(int(c) for c in rgb)) for rgb in heat(np.linspace(0, 1, stops))]


def badge_size(image_size: tuple[int, int]) -> int:
    """The lesion numbers' font size in px: 3 % of the image's longest side, at least 12 px."""
    return max(12, round(0.03 * max(image_size)))


def annotate(image: Image.Image, found: list[dict], scale: float = 1.0) -> Image.Image:
    """``image`` (RGB or RGBA) with each lesion's box and its number in a badge: white on near-black with a
    white rim, sized to the image (``badge_size``), above the box's corner where there is room, else inside.
    ``scale``: the image's size over the size the lesions' boxes were measured at."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    line = max(1, max(image.size) // 400)
    font = ImageFont.load_default(size=badge_size(image.size))
    opaque = (255,) if image.mode == "RGBA" else ()
    for lesion in found:
        x0, y0, x1, y1 = (round(v * scale) for v in lesion["bbox"])
        draw.rectangle([x0, y0, x1, y1], outline=(255, 255, 255, *opaque), width=line)
        left, top, right, bottom = draw.textbbox((0, 0), str(lesion["id"]), font=font)
        pad = max(2, font.size // 5)
        w, h = right - left + 2 * pad, bottom - top + 2 * pad
        bx, by = x0, y0 - h if y0 - h >= 0 else y0
        draw.rounded_rectangle([bx, by, bx + w, by + h], radius=pad, fill=(20, 20, 20, *opaque),
                               outline=(255, 255, 255, *opaque), width=line)
        draw.text((bx + pad - left, by + pad - top), str(lesion["id"]), font=font, fill=(255, 255, 255, *opaque))
    return image


def png_bytes(image: Image.Image) -> bytes:
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
