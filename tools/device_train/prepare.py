"""Build the folder ``.gpu/`` that tools/device_train/run.sh needs on the GPU machine.

The GPU machine (see tools/device_train/README.md) has PyTorch but no TensorFlow, no Keras and
no network: this downloads Keras and its two missing dependencies as wheels for its Python, packs
the training fonts (the installed ``fontpkg_*`` files of ``fonts.TRAIN_FAMILIES``) and saves the
word list. ``.gpu/`` goes to the GPU machine with the checkout (keep it out of commits).

    .venv/bin/python tools/device_train/prepare.py
"""

from __future__ import annotations

import gzip
import subprocess
import sys
import tarfile
from pathlib import Path

from wordocr import fonts, words

OUT = Path(".gpu")
WHEELS = ("keras==3.15.1", "namex==0.1.0", "optree==0.20.0")  # keras's needs the image lacks
DEVICE_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64")


def download_wheels() -> None:
    args = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
            "--python-version", DEVICE_PYTHON, "--implementation", "cp", "-d", str(OUT / "whl")]
    for platform in PLATFORMS:
        args += ["--platform", platform]
    subprocess.run([*args, *WHEELS], check=True)


def pack_fonts() -> int:
    """The training faces' files, laid out as their packages are (``fontpkg_x/files/...``)."""
    paths = sorted({Path(face.path) for face in fonts.font_faces("train")})
    packages = set()
    with tarfile.open(OUT / "fonts.tar.xz", "w:xz") as tar:
        for path in paths:
            package_dir = path.parent.parent  # .../fontpkg_x/files/X.ttf
            tar.add(path, arcname=f"{package_dir.name}/files/{path.name}")
            packages.add(package_dir)
        for package_dir in packages:
            tar.add(package_dir / "__init__.py", arcname=f"{package_dir.name}/__init__.py")
    return len(paths)


def main() -> None:
    OUT.mkdir(exist_ok=True)
    exclude = Path(".git/info/exclude")
    if exclude.exists() and "/.gpu/" not in exclude.read_text().split():
        with exclude.open("a") as f:
            f.write("/.gpu/\n")
    download_wheels()
    count = pack_fonts()
    dictionary = sorted(words._dictionary_words())
    (OUT / "words.txt.gz").write_bytes(gzip.compress("\n".join(dictionary).encode()))
    size = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    print(f"{OUT}/: {count} font files, {len(dictionary)} words, wheels; {size / 2**20:.1f} MiB to carry (limit 64)")


if __name__ == "__main__":
    main()
