"""The public photo sets as calibration sets, and the splits the threshold benchmarks share.

LFW: every photo but the misfiled (MISFILED), the person its folder names (with lfw_verify's
identity merges), the group its hand-checked gender list gives ("female"/"male"; photos in
both lists or neither get none). UTKFace: the group "gender/race" from the file name, and
each photograph once (`same_photos`). UTKFace has no identity labels and is said to hold one
photo per person, but it does not: it holds several photos of many of the same celebrities,
which nothing in the data tells apart (docs/thresholds.md). Its "different-person" pairs
therefore include same-person pairs, and it is used to compare groups, not to calibrate.

People are split by a hash of their name, so every script and every run splits alike:
"calibration" people choose the threshold, "held-out" people check it.

CelebA: every photo but the misfiled (CELEBA_MISFILED), under its identity number (with
CELEBA_MERGES), as one set for checking an operating point on harder photos.

    python benchmarks/public_sets.py [--out var/calibration]   # writes the five CSVs
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from lfw_verify import identity
from PIL import Image

from calibration.photos import Photo, share, write_set

ROOT = Path(__file__).resolve().parents[1]
DATASETS = ROOT.parent / "shared" / "datasets"
CACHE = ROOT / "var" / "cache"
UTK_GENDERS = {"0": "male", "1": "female"}
UTK_RACES = {"0": "White", "1": "Black", "2": "Asian", "3": "Indian", "4": "Others"}


# LFW photos filed under the wrong name, found among the closest "different-person" pairs
# over all its photos and checked by eye: one photograph filed under two names (the second
# copy is dropped), and photos showing someone else (the name in brackets).
MISFILED = {
    "Raul_Ibanez_0001.jpg",  # Carlos_Beltran_0001
    "Ricky_Ray_0001.jpg",  # Bart_Hendricks_0001
    "Eva_Amurri_0001.jpg",  # Emmy_Rossum_0001
    "Andrew_Gilligan_0001.jpg",  # Andrew_Caldecott_0001
    "Carlos_Ruckauf_0001.jpg",  # (Eduardo Duhalde)
    "Michael_Schumacher_0008.jpg",  # (Rubens Barrichello)
    "Anja_Paerson_0001.jpg",  # (Janica Kostelic, in her Croatian sponsor's headband)
    "Janica_Kostelic_0001.jpg",  # (Anja Paerson, under a Swedish flag)
    "Mahmoud_Abbas_0012.jpg",  # (Hamad bin Isa al-Khalifa)
    "Elena_de_Chavez_0001.jpg",  # (her son Hugo Chavez, the face nearest the centre)
}


def lfw_photos(lfw: Path = DATASETS / "lfw") -> list[Photo]:
    genders: dict[str, set[str]] = {}
    for gender in ("male", "female"):
        for line in (lfw / f"{gender}_names.txt").read_text().split():
            genders.setdefault(line, set()).add(gender)
    photos = []
    for path in sorted((lfw / "images").glob("*/*.jpg")):
        if path.name in MISFILED:
            continue
        labels = genders.get(path.name, set())
        group = next(iter(labels)) if len(labels) == 1 else ""
        photos.append(Photo(path, identity(f"{path.parent.name}/{path.name}"), group))
    return photos


def celeba_photos(celeba: Path = DATASETS / "celeba") -> list[Photo]:
    """CelebA's photos under their identity numbers, less the misfiled (CELEBA_MISFILED)."""
    photos = []
    for line in (celeba / "identity_CelebA.txt").read_text().splitlines():
        name, person = line.split()
        if name not in CELEBA_MISFILED:
            photos.append(Photo(celeba / "images" / name, CELEBA_MERGES.get(person, person)))
    return photos


# CelebA's labelling errors, found among the 48 closest "different-person" pairs of SFace
# templates (`facematch calibrate --review`) and checked by eye: one woman under two identity
# numbers (31 of those pairs, down to distance 0.04), and one photograph filed under two (the
# copy under 7396, whose photos it is far from). The other close pairs show different people,
# most with small faces in full-length photos (7330 and 7483, the most frequent, are two
# long-haired models), and stay.
CELEBA_MERGES = {"7393": "7392"}
CELEBA_MISFILED = {"200207.jpg"}  # 192689.jpg of 7245


def utkface_photos(utkface: Path = DATASETS / "utkface") -> list[Photo]:
    paths = sorted((utkface / "images").glob("*.jpg"))
    copies = same_photos(paths)
    photos = []
    for path in paths:
        if path in copies:
            continue
        _, gender, race, _ = path.name.split("_", 3)
        photos.append(Photo(path, path.name, f"{UTK_GENDERS[gender]}/{UTK_RACES[race]}"))
    return photos


# Copies of one photograph in the UTKFace sample, under other names and sometimes other
# labels: their faces are "different people" at distance 0, the first false matches at any
# threshold. Found by the pixels, not by a face matcher (which would find what it is being
# tested on): 32 x 32 grey thumbnails, either one mirrored, correlating at SAME_PHOTO or
# more. Every pair from 0.94 up was checked by eye; the one copy below the cut-off, a colour
# photo and its black-and-white print, is listed.
SAME_PHOTO = 0.952
SAME_PHOTO_PAIRS = {
    ("63_0_1_20170117194942794.jpg.chip.jpg", "78_0_1_20170111210701342.jpg.chip.jpg")
}


def same_photos(paths: list[Path]) -> set[Path]:
    """The files that repeat an earlier file's photograph."""
    thumbnails = []
    for path in paths:
        with Image.open(path) as image:
            grey = image.convert("L").resize((32, 32), Image.Resampling.BOX)
        thumbnails.append(np.asarray(grey, dtype=np.float64))

    def unit(rows: np.ndarray) -> np.ndarray:
        rows = rows - rows.mean(axis=1, keepdims=True)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    plain = unit(np.stack([t.ravel() for t in thumbnails]))
    mirrored = unit(np.stack([t[:, ::-1].ravel() for t in thumbnails]))
    similar = np.maximum(plain @ plain.T, plain @ mirrored.T)
    names = {path.name: i for i, path in enumerate(paths)}
    for a, b in SAME_PHOTO_PAIRS:
        if a in names and b in names:
            similar[names[a], names[b]] = similar[names[b], names[a]] = 1.0
    later = np.triu(similar >= SAME_PHOTO, k=1)
    return {paths[j] for j in np.flatnonzero(later.any(axis=0))}


def split(photos: list[Photo], part: str) -> list[Photo]:
    """The photos of the "calibration" or "held-out" half of the people."""
    wanted = part == "calibration"
    return [p for p in photos if (share(p.person, "calibration") < 0.5) == wanted]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "var" / "calibration")
    args = parser.parse_args()
    for name, photos in (("lfw", lfw_photos()), ("utkface", utkface_photos())):
        for part in ("calibration", "held-out"):
            chosen = split(photos, part)
            write_set(args.out / f"{name}-{part}.csv", chosen)
            print(f"{name}-{part}: {len(chosen)} photos, {len({p.person for p in chosen})} people")
    # CelebA checks a point, whole: too few people to calibrate on.
    photos = celeba_photos()
    write_set(args.out / "celeba.csv", photos)
    print(f"celeba: {len(photos)} photos, {len({p.person for p in photos})} people")


if __name__ == "__main__":
    main()
