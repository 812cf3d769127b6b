#!/usr/bin/env bash
# CI: the installed package works, not only the checkout. Builds a wheel from the checkout's tracked
# files, checks that every file tracked under src/ is inside it (subpackages and package data such as
# deblur/pretrained/*.keras and py.typed), installs it into a new virtual environment outside the
# checkout, and from a folder outside the checkout blurs the chelsea sample and restores it with the
# built-in restorer (`deblur predict` without --checkpoint), then checks the restored photo's size.
#
# Everything happens in a temporary folder that is removed at the end: the build runs on a copy of the
# tracked files (`git ls-files`), so the checkout gets no build/, *.egg-info or dist/ and an untracked
# file cannot slip into the wheel. Run alone: bash .ci/wheel_check.sh (PYTHON picks the interpreter for
# the new environment, default python3). Any failure ends the script with a non-zero status.
set -euo pipefail
cd "$(dirname "$0")/.."
checkout=$(pwd -P)
python=${PYTHON:-python3}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/deblur-wheel.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/src" "$tmp/dist" "$tmp/work"

elapsed() { echo $(( $(date +%s) - $1 )); }

# 1. A wheel from the tracked files (working-tree content; on CI's fresh clone, the commit itself).
start=$(date +%s)
git ls-files -z > "$tmp/tracked"
tar --null -T "$tmp/tracked" -cf - | tar -xf - -C "$tmp/src"
"$python" -m pip wheel -q --no-deps -w "$tmp/dist" "$tmp/src"
wheels=("$tmp"/dist/deblur-*.whl)
if [ "${#wheels[@]}" -ne 1 ] || [ ! -f "${wheels[0]}" ]; then
  echo "ci: wheel: expected one deblur-*.whl, found: ${wheels[*]}" >&2
  exit 1
fi
wheel=${wheels[0]}
echo "ci: wheel: built $(basename "$wheel") ($(du -k "$wheel" | cut -f1) KiB) in $(elapsed "$start") s"

# 2. Its contents: every file tracked under src/ (the modules of every subpackage, and package data such
# as deblur/pretrained/*.keras and py.typed) at its place and with its size, and nothing outside deblur/
# and its .dist-info (no tests/, no stray top-level package).
"$python" - "$wheel" "$tmp/src" "$tmp/tracked" <<'EOF'
import sys, zipfile
from pathlib import Path

wheel, src, tracked_list = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
with zipfile.ZipFile(wheel) as zf:
    sizes = {info.filename: info.file_size for info in zf.infolist() if not info.is_dir()}
tracked = [n for n in tracked_list.read_text().split("\0") if n.startswith("src/")]
problems = []
for name in tracked + ["src/deblur/py.typed"]:
    inside = name.removeprefix("src/")
    if inside not in sizes:
        problems.append(f"missing from the wheel: {inside}")
    elif sizes[inside] != (src / name).stat().st_size:
        problems.append(f"{inside}: {sizes[inside]} bytes in the wheel, {(src / name).stat().st_size} in the checkout")
tops = {n.split("/")[0] for n in sizes}
problems += [f"unexpected top-level entry in the wheel: {t}" for t in sorted(tops)
             if t != "deblur" and not t.endswith(".dist-info")]
if problems:
    print("\n".join(f"ci: wheel: {p}" for p in problems), file=sys.stderr)
    sys.exit(1)
data = sorted(n for n in sizes if n.startswith("deblur/") and not n.endswith(".py"))
packages = sorted({n.rsplit("/", 1)[0].replace("/", ".") for n in sizes if n.endswith("/__init__.py")})
print(f"ci: wheel: all {len(tracked)} files tracked under src/ are inside; {len(packages)} packages; "
      f"package data: {', '.join(data)}")
EOF

# 3. A new virtual environment outside the checkout, with the wheel and the dependencies pip resolves.
start=$(date +%s)
"$python" -m venv "$tmp/venv"
"$tmp/venv/bin/python" -m pip install -q "$wheel"
echo "ci: wheel: installed into a new environment in $(elapsed "$start") s"

# 4. From a folder outside the checkout, with nothing on PYTHONPATH: deblur must come from the new
# environment's site-packages, and its built-in restorer must restore the blurred sample at its size.
start=$(date +%s)
cd "$tmp/work"
unset PYTHONPATH
"$tmp/venv/bin/python" - "$checkout" <<'EOF'
import sys, sysconfig
from pathlib import Path

import deblur

where = Path(deblur.__file__).resolve()
site = Path(sysconfig.get_path("purelib")).resolve()
print(f"ci: wheel: deblur imported from {where}")
if not where.is_relative_to(site) or where.is_relative_to(Path(sys.argv[1])):
    sys.exit(f"ci: wheel: deblur should come from {site}, not {where}")
EOF
"$tmp/venv/bin/deblur" blur --sample chelsea --sigma 2 --output blurred
"$tmp/venv/bin/deblur" predict blurred/chelsea.png --output restored
"$tmp/venv/bin/python" - <<'EOF'
import sys

import numpy as np
from PIL import Image
from skimage import data

sharp = data.chelsea()  # the sample blur started from
with Image.open("blurred/chelsea.png") as im:
    blurred = np.asarray(im)
with Image.open("restored/chelsea.png") as im:
    restored = np.asarray(im)
if not (sharp.shape == blurred.shape == restored.shape):
    sys.exit(f"ci: wheel: shapes differ: sample {sharp.shape}, blurred {blurred.shape}, restored {restored.shape}")
print(f"ci: wheel: restored/chelsea.png is {restored.shape[1]}x{restored.shape[0]}x{restored.shape[2]}, "
      "as its input")
EOF
echo "ci: wheel: blurred and restored the chelsea sample with the installed package in $(elapsed "$start") s"
