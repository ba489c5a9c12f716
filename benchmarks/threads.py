"""Training-step time of the dubai-spss U-Net under two TensorFlow thread settings, each in a child process.

TensorFlow reads TF_NUM_INTRAOP_THREADS, TF_NUM_INTEROP_THREADS and
TF_ENABLE_ONEDNN_OPTS once, when it starts, so each setting runs in its own
child (this script with --child); the children run one after the other, so
swap the settings' order to see how much the machine's load moved between them.
A setting is INTRA,INTER[,ONEDNN] (0 threads: TensorFlow's choice, all cores).
Prints each median step time and the second's ratio to the first:

    python benchmarks/threads.py                          # TF's default against 1 thread each
    python benchmarks/threads.py --settings 2,1 2,1,0     # oneDNN on against off
"""

import argparse
import json
import os
import subprocess
import sys


def child(steps, batch, base_filters):
    """Median seconds of a bf16 SPSS training step (batch × 224² random images), as dubai-spss trains, printed as JSON."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    from kerasweak import losses, models
    from timing import interleaved_step_medians, random_proportion_batch  # benchmarks/timing.py

    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    keras.utils.set_random_seed(0)
    images, proportions = random_proportion_batch(batch, 6)
    model = models.build_spss(models.build_unet(6, base_filters=base_filters))
    model.compile(keras.optimizers.Adam(1e-3), losses.ProportionLoss())
    model.train_on_batch(images, proportions)  # trace and warm up
    print(json.dumps(interleaved_step_medians({"spss": (model, proportions)}, images, steps)["spss"]))


def run_setting(setting, args):
    """The median step time of a child process under `setting` ("INTRA,INTER[,ONEDNN]")."""
    intra, inter, *onednn = setting.split(",")
    env = {**os.environ, "TF_NUM_INTRAOP_THREADS": intra, "TF_NUM_INTEROP_THREADS": inter}
    if onednn:
        env["TF_ENABLE_ONEDNN_OPTS"] = onednn[0]
    command = [sys.executable, __file__, "--child", "--steps", str(args.steps), "--batch", str(args.batch),
               "--base-filters", str(args.base_filters)]
    output = subprocess.run(command, env=env, check=True, capture_output=True, text=True).stdout
    return float(output.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--settings", nargs=2, default=["0,0", "1,1"], metavar="INTRA,INTER[,ONEDNN]")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--base-filters", type=int, default=16)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.steps, args.batch, args.base_filters)
        return
    seconds = [run_setting(setting, args) for setting in args.settings]
    for setting, value in zip(args.settings, seconds):
        print(f"threads {setting:8s} {value:.3f} s/step")
    print(f"{args.settings[1]} / {args.settings[0]} = {seconds[1] / seconds[0]:.3f}   "
          f"(bf16 SPSS U-Net, batch {args.batch} × 224², base filters {args.base_filters}, median of {args.steps} steps)")


if __name__ == "__main__":
    main()
