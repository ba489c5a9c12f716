import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_maps_cli_and_recipes_into_the_package(tmp_path):
    subprocess.run([sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(ROOT)],
                   check=True, capture_output=True, timeout=600)
    (wheel,) = tmp_path.glob("kerasweak-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names}
    assert top_level == {"kerasweak", next(n for n in top_level if n.endswith(".dist-info"))}
    assert "kerasweak/cli/main.py" in names
    assert {"kerasweak/recipes/dubai-spss.toml", "kerasweak/recipes/dubai-benchmark.toml"} <= set(names)
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "kerasweak = kerasweak.cli.main:main" in zipfile.ZipFile(wheel).read(entry_points).decode()
