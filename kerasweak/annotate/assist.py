"""Model assist for the annotation page: suggested proportions, candidate points and an uncertainty per image.

A kerasweak export (kerasweak.inference.load_export) predicts each image's
class maps at native scale (tiled, as `kerasweak predict` does). From them:

- proportions: the mean class probability over the image (summing to 1);
- candidate points: per class, up to `points_per_class` pixels where that class
  is predicted and most certain, at least `spacing` pixels apart;
- size (two classes): the side of the largest square inside the predicted object, 2 × its maximum
  Chebyshev distance to the background (the papers' object size);
- uncertainty: the mean normalised entropy of the pixel probabilities (0 sure, 1 unsure),
  so the page can put the images the model is least sure of first.

Nothing here is saved: the page shows these as suggestions until the user accepts them.
"""

import threading

import numpy as np

from ..errors import KerasweakError


def class_probabilities(maps, num_outputs):
    """(H, W, C) probabilities of a model's (H, W, outputs) maps: one sigmoid output means two classes."""
    maps = np.asarray(maps, dtype=np.float64)
    if num_outputs == 1:
        p = np.clip(maps[..., 0], 0.0, 1.0)
        return np.stack([1.0 - p, p], axis=-1)
    total = maps.sum(axis=-1, keepdims=True)
    return maps / np.maximum(total, 1e-12)


def suggestions_from_probabilities(probabilities, class_names, points_per_class=3, spacing=None):
    """{"proportions": [...], "points": [[x, y, class], ...], "uncertainty": u} of (H, W, C) probabilities."""
    height, width, num_classes = probabilities.shape
    proportions = probabilities.reshape(-1, num_classes).mean(axis=0)
    proportions = proportions / proportions.sum()
    entropy = -(probabilities * np.log(np.clip(probabilities, 1e-12, 1.0))).sum(axis=-1)
    uncertainty = float(entropy.mean() / np.log(num_classes))
    spacing = spacing or max(4, min(height, width) // 8)
    winner = probabilities.argmax(axis=-1)
    points = []
    for c, name in enumerate(class_names):
        score = np.where(winner == c, probabilities[..., c], -1.0).ravel()
        chosen = []
        for index in np.argsort(-score, kind="stable")[:20000]:
            if score[index] < 0 or len(chosen) == points_per_class:
                break
            y, x = divmod(int(index), width)
            if all(max(abs(x - px), abs(y - py)) >= spacing for px, py in chosen):
                chosen.append((x, y))
        points += [[float(x), float(y), name] for x, y in chosen]
    out = {"proportions": [round(float(p), 4) for p in proportions], "points": points, "uncertainty": round(uncertainty, 4)}
    if num_classes == 2:
        out["size"] = largest_square_side(winner == 1)
    return out


def largest_square_side(mask):
    """2 × the maximum Chebyshev distance from a pixel of `mask` to outside it (0 for an empty mask)."""
    import cv2

    if not mask.any():
        return 0.0
    padded = np.pad(mask.astype(np.uint8), 1)
    return float(2 * cv2.distanceTransform(padded, cv2.DIST_C, 3).max())


class ModelAssist:
    """Suggestions of one exported model for a folder's images, computed once per image and cached (thread-safe)."""

    def __init__(self, model_path, store, tile=448, overlap=64):
        from ..inference import load_export

        self.predict_fn, self.metadata = load_export(model_path)
        names = list(self.metadata["class_names"])
        if len(names) != len(store.classes):
            raise KerasweakError(f"the model predicts {len(names)} classes ({', '.join(names)}); dataset.toml names "
                                 f"{len(store.classes)} ({', '.join(store.classes)})", model_path)
        self.store, self.tile, self.overlap = store, tile, overlap
        self._cache, self._lock = {}, threading.Lock()

    def suggest(self, image):
        """The suggestions for one image of the store (cached)."""
        with self._lock:
            if image not in self._cache:
                self._cache[image] = self._compute(image)
            return self._cache[image]

    def known_uncertainties(self):
        with self._lock:
            return {name: s["uncertainty"] for name, s in self._cache.items()}

    def _compute(self, image):
        from ..data.folder_files import decode_image
        from ..evaluation import predict_tiled

        pixels = decode_image(self.store.images[image], int(self.metadata["channels"]))
        side = max(pixels.shape[:2])
        tile = min(self.tile, max(16, -(-side // 16) * 16))
        overlap = min(self.overlap, tile // 4)
        maps = predict_tiled(self.predict_fn, pixels, int(self.metadata["num_outputs"]), tile, overlap)
        return suggestions_from_probabilities(class_probabilities(maps, int(self.metadata["num_outputs"])),
                                              self.store.classes)

    def warm_up(self, stop):
        """Compute every image's suggestions in the background (for ordering by uncertainty) until `stop` is set."""
        for image in self.store.images:
            if stop.is_set():
                return
            try:
                self.suggest(image)
            except Exception:  # an image the model cannot read is only left without a suggestion
                continue
