"""A run's OUT folder: which process trains which seed (claims), and whether OUT holds this run (the fingerprint).

Rerunning a command resumes into its OUT; running it in several processes at
once shares the seeds between them. Both rest on OUT/config.json: the recipe
and options the run was started with, compared by `config_fingerprint`.
"""

import json
import os
import socket
import tempfile

from .errors import KerasweakError
from .io import alive, write_json
from .recipe import fingerprint, normalise_recipe

CLAIM = "claim.json"


def this_process():
    """{"host", "pid"} of this process, as a claim records it."""
    return {"host": socket.gethostname(), "pid": os.getpid()}


def claim_seed(seed_dir):
    """Claim an unfinished seed for this process (SEED_DIR/claim.json); False when another live process holds it.

    The claim file is written whole under a temporary name and linked into place
    exclusively, so of two processes starting the same seed one wins, and a kill
    never leaves an empty claim that would hold the seed forever. A claim left by
    a process of this host that has ended (killed, crashed) is taken over; one
    from another host holds until its file is deleted.
    """
    seed_dir.mkdir(parents=True, exist_ok=True)
    path = seed_dir / CLAIM
    with tempfile.NamedTemporaryFile("w", dir=seed_dir, prefix=f".{CLAIM}.", delete=False) as claim:
        json.dump(this_process(), claim)
    try:
        os.link(claim.name, path)
        return True
    except FileExistsError:
        holder = claim_holder(path)
        if holder == this_process() or (holder.get("host") == socket.gethostname() and not alive(holder["pid"])):
            write_json(path, this_process())
            return True
        return False
    finally:
        os.unlink(claim.name)


def claim_holder(path):
    """The claim's {"host", "pid"}; {} while its holder is writing or removing it (held, either way)."""
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def label_files(sizes_csv, keypoints):
    """The user's label files as config.json records them (their paths; None when not given)."""
    return {"sizes_csv": None if sizes_csv is None else str(sizes_csv), "keypoints": None if keypoints is None else str(keypoints)}


def config_fingerprint(config):
    """The parts of a run's config that change its results: the options given and the recipe's `fingerprint`.

    The recipe is normalised first, so a config.json written before a default
    was spelt out (or with a key at its default) matches; unset options (None)
    are left out, so a folder written before an option existed still matches.
    """
    options = {key: value for key, value in config.items() if value is not None and key != "recipe"}
    return json.loads(json.dumps({**options, "recipe": fingerprint(normalise_recipe(config["recipe"], stored=True))}))


def check_same_config(path, config):
    """Refuse to resume into an OUT that holds a run with other training settings; write config.json in a new one."""
    if path.exists():
        try:
            earlier = config_fingerprint(json.loads(path.read_text()))
        except KerasweakError as err:
            raise KerasweakError(f"holds a run with a different recipe, which this kerasweak cannot read ({err.problem}); "
                                 "use another --out", path.parent) from None
        if earlier != config_fingerprint(config):
            raise KerasweakError("holds a run with a different recipe or options; use another --out", path.parent)
    else:
        write_json(path, config)
