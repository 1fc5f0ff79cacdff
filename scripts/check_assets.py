"""Refuse assets that differ from their checksums in project.yml.

`spacy project assets` only warns of a wrong checksum, and `convert` reads
whatever the file holds: a changed test file would change the gold test set
without a word. The project's `convert` runs this first, with the same
checksum as weasel's (`weasel.util.get_checksum`).

    python scripts/check_assets.py [PROJECT_DIR] [ASSET ...]

checks the named assets (paths as project.yml's `dest`), or all of them.
"""

import os
import sys
from pathlib import Path
from typing import List, Sequence

import srsly
from weasel.util import get_checksum


class UnknownAssets(ValueError):
    """Names given that are no asset of project.yml with a checksum."""


def changed_assets(project_dir: Path, names: Sequence[str] = ()) -> List[str]:
    """The assets of project.yml (those named, or all) that are missing or differ from their checksum.

    Raises UnknownAssets for a name that is no asset with a checksum: a misspelt
    name in a command would otherwise turn its check off without a word."""
    assets = [asset for asset in srsly.read_yaml(project_dir / "project.yml").get("assets", [])
              if asset.get("checksum")]
    names = [os.path.normpath(name) for name in names]  # "./assets/..." names "assets/..."
    unknown = sorted(set(names) - {asset["dest"] for asset in assets})
    if unknown:
        raise UnknownAssets(f"{', '.join(unknown)}: no asset of project.yml with a checksum")
    return [asset["dest"] for asset in assets
            if (not names or asset["dest"] in names)
            and (not (project_dir / asset["dest"]).exists()
                 or get_checksum(project_dir / asset["dest"]) != asset["checksum"])]


def main(argv: Sequence[str]) -> int:
    project_dir = Path(argv[0]) if argv else Path(".")
    if not (project_dir / "project.yml").is_file():
        print(f"check_assets: {project_dir} holds no project.yml (the first argument is the project's folder)",
              file=sys.stderr)
        return 2
    try:
        changed = changed_assets(project_dir, argv[1:])
    except UnknownAssets as e:
        print(f"check_assets: {e} (names as its `dest`)", file=sys.stderr)
        return 2
    if changed:
        print(f"check_assets: {', '.join(changed)}: missing, or not the file project.yml's checksum names; "
              "restore it (git checkout -- FILE), or, for a deliberate change, update its checksum in "
              "project.yml", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
