"""Honest splits: train, validation and test never share a source image, a block of slices or a patient's volume.

The papers split patches (Dubai, EM) or slices (hippocampus) at random, so
neighbouring patches of one image, or nearly identical neighbouring slices,
land on both sides and the test scores leak. A recipe's `[data] split` picks:

- "patch": the papers' random split of patches (or slices), `split_indices`;
- "image": whole source images go to one part (Dubai: one of the 72 tile images);
- "block": contiguous blocks of slices, with `block_gap` slices left out where
  two parts meet, so no test slice has a training neighbour (EM);
- "volume": whole volumes, i.e. patients (hippocampus).

Every split takes the recipe's fractions of patches (approximately: groups are
kept whole) and depends on `split_seed` only.
"""

import re

import numpy as np

from .dataset import split_indices

SPLIT_RULES = ("patch", "image", "block", "volume")
_VOLUME_SLICE = re.compile(r"^(.*)\[z=\d+\]$")


def source_groups(sources, rule):
    """The group key of each patch's source under `rule`: its image ("image", "block") or its volume ("volume")."""
    if rule == "volume":
        return [_VOLUME_SLICE.sub(r"\1", source) for source in sources]
    return list(sources)


def _take(order, sizes, target, spare):
    """The first groups of `order` whose sizes add up to about `target` patches (at least one group when target > 0),
    leaving at least `spare` groups of `order` untaken."""
    taken, total = [], 0
    for group in order[:max(0, len(order) - spare)]:
        if total >= target or (taken and total + sizes[group] / 2 > target):
            break
        taken.append(group)
        total += sizes[group]
    return taken


def group_split(groups, test_fraction, val_fraction, seed):
    """(train, val, test) patch indices with every group in one part; groups drawn in a seeded random order."""
    groups = np.asarray(groups)
    names, inverse, counts = np.unique(groups, return_inverse=True, return_counts=True)
    order = list(np.random.default_rng(seed).permutation(len(names)))
    test = _take(order, counts, len(groups) * test_fraction, spare=1 + (val_fraction > 0))
    rest = [g for g in order if g not in set(test)]
    val = _take(rest, counts, counts[rest].sum() * val_fraction, spare=1)
    part = np.zeros(len(names), dtype=int)  # 0 train, 1 val, 2 test
    part[val], part[test] = 1, 2
    return tuple(np.flatnonzero(part[inverse] == p) for p in (0, 1, 2))


def block_split(groups, test_fraction, val_fraction, seed, num_blocks=10, gap=1):
    """(train, val, test) patch indices of slices cut into `num_blocks` contiguous blocks (in reading order).

    Whole blocks go to the test part and then to validation in a seeded random
    order until each holds its fraction; `gap` slices of a training block next to
    a validation or test block are left out, so the parts never touch.
    """
    slices = list(dict.fromkeys(groups))  # reading order = slice order
    position = {name: i for i, name in enumerate(slices)}
    slice_of_patch = np.array([position[g] for g in groups])
    edges = np.linspace(0, len(slices), min(num_blocks, len(slices)) + 1).round().astype(int)
    block_of_slice = np.searchsorted(edges, np.arange(len(slices)), side="right") - 1
    blocks = block_of_slice[slice_of_patch]
    train_blocks, val_blocks, test_blocks = group_split(blocks, test_fraction, val_fraction, seed)
    part = np.zeros(len(slices), dtype=int)
    for p, index in ((1, val_blocks), (2, test_blocks)):
        part[np.unique(slice_of_patch[index])] = p
    held = np.flatnonzero(part > 0)
    near = np.zeros(len(slices), dtype=bool)
    for offset in range(1, gap + 1):
        near[np.clip(held - offset, 0, None)] = True
        near[np.clip(held + offset, None, len(slices) - 1)] = True
    part[(part == 0) & near] = -1  # left out
    patch_part = part[slice_of_patch]
    return tuple(np.flatnonzero(patch_part == p) for p in (0, 1, 2))


def split_patches(sources, rule, test_fraction, val_fraction, seed, gap=1):
    """(train, val, test) indices of patches cut from `sources` under a split `rule` (SPLIT_RULES)."""
    if rule == "patch":
        return split_indices(len(sources), test_fraction, val_fraction, seed)
    groups = source_groups(sources, rule)
    if rule == "block":
        return block_split(groups, test_fraction, val_fraction, seed, gap=gap)
    return group_split(groups, test_fraction, val_fraction, seed)
