"""The `kerasweak` command: parses arguments and calls library functions."""

import math
import os
import signal
import sys

import click


def _import_tensorflow_quietly():
    """Import TensorFlow with its C++ start-up lines (printed before any log level applies) silenced."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


_import_tensorflow_quietly()

from kerasweak.distribute import STRATEGIES  # noqa: E402
from kerasweak.errors import (KerasweakError, Terminated, check_termination, drop_terminated_quietly,  # noqa: E402
                              request_termination)
from kerasweak.io import disk_full_file  # noqa: E402


@click.group()
@click.version_option(package_name="kerasweak")
def cli():
    """Train semantic segmentation networks from cheap labels."""


@cli.command("recipes")
def recipes_command():
    """List the recipes."""
    from kerasweak.recipe import list_recipes

    recipes = list_recipes()
    width = max(len(name) for name, _ in recipes)
    for name, description in recipes:
        click.echo(f"{name:{width}s}  {description}")


@cli.command("recipe")
@click.argument("name")
@click.option("--data", type=click.Path(), help="Dataset folder (default: $KERASWEAK_DATA, then ../shared/data).")
@click.option("--out", type=click.Path(), help="Output folder (default: runs/NAME). Rerunning resumes.")
@click.option("--epochs", type=click.IntRange(min=1), help="Override the recipe's maximum epochs.")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True, help="Number of seeds; results are mean ± std.")
@click.option("--max-samples", type=click.IntRange(min=2), help="Use only the first N patches (quick runs).")
@click.option("--sizes", "sizes_csv", type=click.Path(), help="CSV 'image,size' replacing the object sizes derived from masks.")
@click.option("--keypoints", type=click.Path(),
              help="CSV or JSON 'image,class,x,y' of points clicked on whole images (whole-image pixels); an spss_plus "
                   "recipe trains on them instead of keypoints sampled from the masks.")
@click.option("--deterministic", is_flag=True, help="TF op determinism: the same seed gives the same metrics (slower).")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="none", show_default=True,
              help="tf.distribute: all local GPUs (or CPUs), or the workers in $TF_CONFIG; batch_size is the global batch.")
def recipe_command(name, data, out, epochs, seeds, max_samples, sizes_csv, keypoints, deterministic, strategy):
    """Run recipe NAME (a packaged name, or a path to a TOML file); a sweep recipe runs every setting."""
    from kerasweak.runner import run_recipe

    out = out or os.path.join("runs", name)
    results = run_recipe(name, data=data, out=out, epochs=epochs, seeds=seeds, max_samples=max_samples, echo=click.echo,
                         sizes_csv=sizes_csv, deterministic=deterministic, strategy=strategy, keypoints=keypoints)
    if results is None:
        return  # another process running the same command writes the results
    click.echo(open(os.path.join(out, "results.md")).read())
    made = "sweep.png and one folder per setting" if "sweep" in results else "figure.png, loss.png and model/"
    click.echo(f"wrote {out}/results.json, results.md, {made}")


@cli.command("train-proportions")
@click.argument("csv_file", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Output folder: model/ and results.json.")
@click.option("--recipe", default="dubai-spss", show_default=True, help="Recipe whose model and protocol to use.")
@click.option("--epochs", type=click.IntRange(min=1), help="Override the recipe's maximum epochs.")
@click.option("--channels", type=click.Choice(["1", "3"]), default="3", show_default=True, help="Image channels.")
def train_proportions_command(csv_file, out, recipe, epochs, channels):
    """Train SPSS from CSV_FILE (image,<class 1>,...,<class C>) with no masks at all.

    Replaced by `kerasweak train spss DIR` (a generic folder with proportions.csv), which keeps each image's
    aspect, has seeds and a split by image; this command stays for one release.
    """
    from kerasweak.proportions_run import train_from_proportions_csv

    results = train_from_proportions_csv(csv_file, out, recipe=recipe, epochs=epochs, channels=int(channels), echo=click.echo)
    click.echo(f"best validation proportion loss {results['best_val_loss']:.4f}; wrote {out}/model and results.json")


@cli.command("compare")
@click.argument("outs", nargs=-1, required=True, type=click.Path())
@click.option("--out", required=True, type=click.Path(),
              help="Markdown table to write; FILE_trimap.png beside it if runs have trimap figures.")
@click.option("--figure", type=click.Path(), help="PNG of the same test patches predicted by each run's exported model.")
@click.option("--data", type=click.Path(), help="Dataset folder for --figure (default: $KERASWEAK_DATA, then ../shared/data).")
@click.option("--patches", default=4, show_default=True, type=click.IntRange(min=1), help="Test patches in --figure.")
def compare_command(outs, out, figure, data, patches):
    """Compare finished runs (OUT folders of recipes or sweeps) in one table, the paper's Table 1/4 format."""
    from kerasweak.compare import compare_runs

    written = compare_runs(outs, out, figure=figure, data=data, num_patches=patches)
    click.echo(open(out).read())
    click.echo("wrote " + ", ".join(map(str, written)))


@cli.command("predict")
@click.argument("model", type=click.Path())
@click.argument("images", nargs=-1, required=True)
@click.option("--out", required=True, type=click.Path(),
              help="File to write for one image (.png, or .npy for probabilities); a folder for a folder, glob or several.")
@click.option("--format", "fmt", type=click.Choice(["colour", "index", "probabilities"]), default="colour",
              show_default=True, help="colour: palette PNG, overlay and legend; index: class-index PNG; "
                                      "probabilities: float16 .npy (H, W, C).")
@click.option("--tile", default=448, show_default=True, help="Tile size: a multiple of 16, at least 32.")
@click.option("--overlap", default=64, show_default=True, help="Overlap between tiles, blended: 0 <= overlap < tile/2.")
@click.option("--reflect-context", type=int, default=0, show_default=True,
              help="Predict each tile with this many pixels (a multiple of 8) of reflected context at every edge, "
                   "cropped back: no stripe along the image's border from a zero-padded network.")
def predict_command(model, images, out, fmt, tile, overlap, reflect_context):
    """Segment IMAGES (files, folders or quoted globs; any size) with an exported MODEL.

    A MODEL trained on whole images without masks (proportions only) records its
    working scale: each image is resized to it (longer side = the patch side),
    predicted whole, and its class maps resized back bilinearly to the native
    size before the argmax; --tile and --overlap are then unused.
    """
    from kerasweak.prediction import predict_files

    written = predict_files(model, images, out, fmt=fmt, tile=tile, overlap=overlap, echo=click.echo,
                            reflect_context=reflect_context)
    click.echo(f"wrote {len(written)} files" if len(written) > 3 else "wrote " + ", ".join(map(str, written)))


@cli.command("evaluate")
@click.argument("model", type=click.Path())
@click.option("--data", type=click.Path(), help="Dataset folder (default: $KERASWEAK_DATA, then ../shared/data).")
@click.option("--split", type=click.Choice(["test", "all"]), default="test", show_default=True)
@click.option("--reflect-context", type=int, default=None,
              help="Also score each patch predicted with this many pixels (a multiple of 8) of reflected context at "
                   "every edge (models trained on patches; default: the recipe's [evaluation] reflect_context).")
def evaluate_command(model, data, split, reflect_context):
    """Evaluate an exported MODEL on its dataset's test split (or all patches).

    Also writes MODEL_confusion_SPLIT.png beside the MODEL folder: the
    row-normalised confusion matrix (each cell its fraction of the true class and its pixel count).
    """
    from kerasweak.evaluation import confusion_figure
    from kerasweak.inference import evaluate_export
    from kerasweak.reporting import VIEW_ROWS

    scores = evaluate_export(model, data=data, split=split, reflect_context=reflect_context)
    model_folder = os.path.abspath(model).rstrip(os.sep)
    figure = f"{model_folder}_confusion_{split}.png"
    e_measure = f"  E-measure {100 * scores['e_measure']:.1f}" if "e_measure" in scores else ""
    click.echo(f"mIoU {100 * scores['miou']:.1f}  accuracy {100 * scores['accuracy']:.1f}{e_measure}")
    for name in scores["f1"]:
        class_e_measure = f"  E {_percent(scores['e_measure_per_class'][name]):>5s}" if e_measure else ""
        click.echo(f"  {name:12s} IoU {100 * scores['iou'][name]:5.1f}  F1 {100 * scores['f1'][name]:5.1f}"
                   f"  precision {100 * scores['precision'][name]:5.1f}  recall {100 * scores['recall'][name]:5.1f}{class_e_measure}")
    for view, label in VIEW_ROWS.items():
        if view in scores:
            f1 = "  ".join(f"{name} {100 * value:.1f}" for name, value in scores[view]["f1"].items())
            click.echo(f"{label}: mIoU {100 * scores[view]['miou']:.1f}  accuracy {100 * scores[view]['accuracy']:.1f}  F1 {f1}")
    for region, by_width in scores.get("trimap_miou", {}).items():
        figures = "  ".join(f"w={width} {_percent(miou)}" for width, miou in by_width.items())
        click.echo(f"trimap mIoU {region.replace('_', '-'):12s} {figures}")
    confusion_figure(figure, scores["confusion_matrix"], list(scores["iou"]),
                     title=f"{os.path.basename(model_folder)}, {split} split: rows sum to 1")
    click.echo(f"wrote {figure} (confusion matrix, rows normalised to the true class)")


def _patch_size(ctx, param, value):
    """--patch-size: N, or HxW."""
    if value is None:
        return None
    parts = value.lower().split("x")
    if not all(p.isdigit() for p in parts) or len(parts) not in (1, 2):
        raise click.BadParameter(f"expected N or HxW (pixels), got {value!r}")
    return int(parts[0]) if len(parts) == 1 else [int(parts[0]), int(parts[1])]


@cli.command("train")
@click.argument("method", type=click.Choice(["pixel", "spss", "spss-plus", "points", "sizes", "semeda", "sobel"]))
@click.argument("folder", type=click.Path())
@click.option("--out", required=True, type=click.Path(), help="Output folder. Rerunning resumes.")
@click.option("--epochs", type=click.IntRange(min=1), help="Maximum epochs (also caps SEMEDA's edge network and the size fine-tuning).")
@click.option("--seeds", type=click.IntRange(min=1), default=1, show_default=True, help="Number of seeds; results are mean ± std.")
@click.option("--patch-size", callback=_patch_size, help="Patch side N, or HxW, in pixels (multiples of 16; default 224).")
@click.option("--batch-size", type=click.IntRange(min=1), help="Patches per step (default 16).")
@click.option("--base-filters", type=click.IntRange(min=1), help="U-Net filters at the first level (default 16).")
@click.option("--mixed-precision", is_flag=True, help="mixed_bfloat16 where the CPU has bfloat16 instructions or on a GPU (about 1.8x faster there); float32 elsewhere and by default.")
@click.option("--max-samples", type=click.IntRange(min=2), help="Use only the first N patches, in proportion from each split part.")
@click.option("--deterministic", is_flag=True, help="TF op determinism: the same seed gives the same metrics (slower).")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="none", show_default=True,
              help="tf.distribute: all local GPUs (or CPUs), or the workers in $TF_CONFIG.")
def train_command(method, folder, out, epochs, seeds, patch_size, batch_size, base_filters, mixed_precision, max_samples,
                  deterministic, strategy):
    """Train METHOD on a generic dataset FOLDER (dataset.toml, images/, masks/ or label CSVs; docs/data.md)."""
    from kerasweak.own_data import train_folder

    results = train_folder(method, folder, out, epochs=epochs, seeds=seeds, patch_size=patch_size, batch_size=batch_size,
                           base_filters=base_filters, mixed_precision=mixed_precision, max_samples=max_samples, strategy=strategy,
                           deterministic=deterministic, echo=click.echo)
    if results is None:
        return
    click.echo(open(os.path.join(out, "results.md")).read())
    click.echo(f"wrote {out}/results.json, results.md, figure.png, loss.png, split.csv and model/")


@cli.command("check-data")
@click.argument("folder", type=click.Path())
def check_data_command(folder):
    """Check a generic dataset FOLDER: every problem one line (errors exit 2), then a summary."""
    from kerasweak.data.folder_check import check_folder

    check = check_folder(folder)
    for line in check.summary:
        click.echo(line)
    for line in check.warnings:
        click.echo(f"warning: {line}", err=True)
    for line in check.errors:
        click.echo(f"error: {line}", err=True)
    click.echo(f"{len(check.errors)} errors, {len(check.warnings)} warnings")
    if check.errors:
        sys.exit(2)


@cli.command("convert")
@click.argument("kind", type=click.Choice(["aerial-dubai", "epfl-em", "hippocampus", "camvid", "label-studio", "cvat"]))
@click.argument("source", type=click.Path())
@click.argument("folder", type=click.Path())
def convert_command(kind, source, folder):
    """Write SOURCE as a generic dataset FOLDER (a dataset), or add its keypoints to FOLDER (a label-studio or cvat export)."""
    from kerasweak import convert

    if kind in ("label-studio", "cvat"):
        convert.convert_keypoints(kind, source, folder, echo=click.echo)
    elif kind == "camvid":
        convert.convert_camvid(source, folder, echo=click.echo)
    else:
        convert.convert_paper_dataset(kind, source, folder, echo=click.echo)


@cli.command("annotate")
@click.argument("folder", type=click.Path())
@click.option("--model", type=click.Path(), help="An exported model (OUT/model) whose suggestions the page shows.")
@click.option("--port", type=click.IntRange(0, 65535), default=8765, show_default=True, help="Port (0: any free one).")
@click.option("--host", help="Listen on this address instead of 127.0.0.1; the page then needs the printed token.")
def annotate_command(folder, model, port, host):
    """Label a generic dataset FOLDER in the browser: keypoints, proportions, sizes (docs/annotate.md)."""
    from kerasweak.annotate import serve

    serve(folder, model=model, host=host, port=port, echo=click.echo)


def _percent(fraction):
    """A fraction as a percentage; "–" for NaN (nothing to score, e.g. a trimap band as wide as the patch)."""
    return "–" if math.isnan(fraction) else f"{100 * fraction:.1f}"


def main():
    """Entry point: bad input or a full disk becomes one line on stderr and exit code 2, never a traceback.

    SIGTERM (a job scheduler's stop) ends with one line and exit code 143; every
    command resumes or redoes its work when rerun.
    """
    signal.signal(signal.SIGTERM, request_termination)
    sys.unraisablehook = drop_terminated_quietly(sys.unraisablehook)
    try:
        cli.main(standalone_mode=False)
        check_termination()
    except KerasweakError as err:
        click.echo(f"error: {err}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except Terminated:
        click.echo("terminated; rerun the same command to resume", err=True)
        sys.exit(143)
    except Exception as err:
        written = disk_full_file(err)
        if written is None:
            raise
        click.echo(f"error: no space left on device writing {written or 'the output'}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
