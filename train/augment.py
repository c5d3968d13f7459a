"""Random distortions that make MNIST look more like digits drawn with a finger on a screen.

People rotate, slant and stretch their digits and draw with strokes thicker or thinner than
MNIST's pen. Each digit is upsampled 2x (so a one-pixel change of stroke width is half an MNIST
pixel), then rotated, sheared, stretched and thickened or thinned at random. Scale and position
do not matter: the normalisation graph fits the ink to the box and centres it afterwards.
"""

import math

import numpy as np
from PIL import Image, ImageFilter

UPSAMPLE = 2
MAX_ROTATION_DEGREES = 15.0
MAX_SHEAR = 0.3
MAX_STRETCH = 0.2         # independent x/y scale in [1 - s, 1 + s] changes the aspect ratio
THICKEN_PROBABILITY = 0.3
THIN_PROBABILITY = 0.2
CLEAN_PROBABILITY = 0.25  # some digits stay as they are, so the model keeps seeing real MNIST


def random_affine(rng, size):
    """Inverse affine coefficients (PIL's convention) for a random rotation/shear/stretch about the centre."""
    angle = math.radians(rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES))
    shear = rng.uniform(-MAX_SHEAR, MAX_SHEAR)
    scale_x, scale_y = rng.uniform(1 - MAX_STRETCH, 1 + MAX_STRETCH, size=2)
    cos, sin = math.cos(angle), math.sin(angle)
    forward = np.array([[cos, -sin], [sin, cos]]) @ np.array([[1.0, shear], [0.0, 1.0]]) @ np.diag([scale_x, scale_y])
    inverse = np.linalg.inv(forward)
    centre = np.array([size / 2.0, size / 2.0])
    offset = centre - inverse @ centre
    return (inverse[0, 0], inverse[0, 1], offset[0], inverse[1, 0], inverse[1, 1], offset[1])


def augment_digit(image, rng):
    """One uint8 MNIST digit [28, 28] -> a float32 image in [0, 1], ink = 1: distorted at 2x, or left as it is."""
    if rng.random() < CLEAN_PROBABILITY:
        # Untouched, so the model also sees MNIST's own sharpness, not only resampled digits.
        return image.astype(np.float32) / 255.0
    size = image.shape[0] * UPSAMPLE
    # Pad so rotation and stretching never push ink off the canvas.
    picture = Image.fromarray(image).resize((size, size), Image.BILINEAR)
    canvas = Image.new("L", (size * 3 // 2, size * 3 // 2))
    canvas.paste(picture, (size // 4, size // 4))
    canvas = canvas.transform(canvas.size, Image.AFFINE, random_affine(rng, canvas.size[0]), resample=Image.BILINEAR)
    roll = rng.random()
    if roll < THICKEN_PROBABILITY:
        canvas = canvas.filter(ImageFilter.MaxFilter(3))
    elif roll < THICKEN_PROBABILITY + THIN_PROBABILITY:
        thinner = canvas.filter(ImageFilter.MinFilter(3))
        # Thinning a thin stroke can break it apart: keep it only if most of the ink survives.
        if np.asarray(thinner, np.float32).sum() > 0.4 * np.asarray(canvas, np.float32).sum():
            canvas = thinner
    return np.asarray(canvas, np.float32) / 255.0


def augment_many(images, rng):
    """A stack of uint8 digits [N, 28, 28] -> a list of distorted float32 images."""
    return [augment_digit(image, rng) for image in images]


def redrawn(picture, rng, pen_widths, side):
    """A glyph or digit picture (PIL "L" or "F", at most side x side) centred on a roomier canvas, distorted by
    random_affine, reduced to its centre line and drawn again with a round pen whose width is drawn from
    pen_widths (shares of side): float32 ink [1.5 side, 1.5 side]."""
    from reader.pen import centre_distance, paint, skeleton

    room = side * 3 // 2  # room for rotation and stretch
    canvas = Image.new(picture.mode, (room, room))
    canvas.paste(picture, ((room - picture.width) // 2, (room - picture.height) // 2))
    canvas = canvas.transform(canvas.size, Image.AFFINE, random_affine(rng, room), resample=Image.BILINEAR)
    ink = np.asarray(canvas, np.float32) / (255.0 if picture.mode == "L" else 1.0)
    return paint(centre_distance(skeleton(np.clip(ink, 0.0, 1.0))), rng.uniform(*pen_widths) * side)

