"""A face box in pixels, as detectors return it and the pipeline crops it."""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Box:
    """An axis-aligned box in pixels: top-left corner (x, y), width and height."""

    x: int
    y: int
    width: int
    height: int

    @classmethod
    def whole(cls, image: np.ndarray) -> "Box":
        """The box covering a whole image."""
        return cls(0, 0, image.shape[1], image.shape[0])

    def expand(self, margin: float, image_shape: tuple[int, ...]) -> "Box":
        """Grow by `margin` x side on every side, then clip to the image (H, W, ...)."""
        dx, dy = round(self.width * margin), round(self.height * margin)
        left, top = max(0, self.x - dx), max(0, self.y - dy)
        right = min(image_shape[1], self.x + self.width + dx)
        bottom = min(image_shape[0], self.y + self.height + dy)
        return Box(left, top, right - left, bottom - top)

    def crop(self, image: np.ndarray) -> np.ndarray:
        """The pixels of `image` inside this box."""
        return image[self.y : self.y + self.height, self.x : self.x + self.width]
