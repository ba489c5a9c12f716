"""Prediction at an export's working scale: whole images fitted into the patch as in training, class maps resized back.

An export trained on whole images scaled into patches (a folder without masks,
kerasweak.inference.working_scale) learnt them at that scale; `predict` and
`evaluate` run it there and return class maps of the native size.
"""

import numpy as np


def bilinear_taps(size, source_size):
    """(first, second, weight of second) source index per output index of a bilinear resize from source_size to size.

    The half-pixel-centre rule of cv2.INTER_LINEAR: output
    pixel i reads source position (i + 0.5) · source_size / size − 0.5, clamped to the source.
    """
    position = np.clip((np.arange(size) + 0.5) * source_size / size - 0.5, 0, source_size - 1)
    first = np.floor(position).astype(int)
    return first, np.minimum(first + 1, source_size - 1), (position - first).astype(np.float32)


def scaled_strips(predict_fn, image, working_scale, rows=256):
    """Yield (first row, class maps of `rows` rows) of the image predicted at an export's working scale.

    The image is fitted into working_scale["patch"] as training fitted it
    (kerasweak.data.folder.fit_whole_image, without the padding), predicted in
    one call, and its class maps are resized back to the native size bilinearly
    (`bilinear_taps`), strip by strip, so memory holds one strip of native-size maps.
    """
    from .data.folder import fitted_size, resize_image

    height, width = image.shape[:2]
    size = fitted_size(height, width, working_scale["patch"])[1]
    small = np.asarray(predict_fn(resize_image(image, size)[None].astype(np.float32)), np.float32)[0]
    col_first, col_second, col_weight = bilinear_taps(width, size[1])
    columns = small[:, col_first] * (1 - col_weight[:, None]) + small[:, col_second] * col_weight[:, None]
    row_first, row_second, row_weight = bilinear_taps(height, size[0])
    for start in range(0, height, rows):
        end = min(start + rows, height)
        weight = row_weight[start:end, None, None]
        yield start, columns[row_first[start:end]] * (1 - weight) + columns[row_second[start:end]] * weight
