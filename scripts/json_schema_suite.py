#!/usr/bin/env python3
"""Puts the official JSON-Schema-Test-Suite's draft 2020-12 tests where the Swift tests read them.

    scripts/json_schema_suite.py [--dest FOLDER]

The suite ships inside the `jsonschema` source distribution on PyPI (pinned below) under
`json/tests/draft2020-12/`. This fetches that archive with pip, copies out only those `*.json` files into
FOLDER (default: `.build/json-schema-test-suite/draft2020-12/` in the package), and prints FOLDER. A folder
already filled by this version is left as it is, so a second run does nothing. The files are never committed.
"""
import argparse
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile

VERSION = "4.25.1"
MEMBER_DIR = "json/tests/draft2020-12/"
# Written last, once every file is in place: a folder without it is an interrupted run and is fetched again.
MARKER = f".from-jsonschema-{VERSION}"


def main():
    # abspath, not resolve: a checkout reached through a symlink keeps its own .build.
    root = pathlib.Path(os.path.abspath(__file__)).parent.parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dest", type=pathlib.Path, default=root / ".build/json-schema-test-suite/draft2020-12")
    dest = parser.parse_args().dest.absolute()

    if (dest / MARKER).is_file():
        print(dest)
        return 0

    with tempfile.TemporaryDirectory(prefix="json-schema-suite-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                   f"jsonschema=={VERSION}", "-d", tmp]
        result = subprocess.run(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        archives = sorted(pathlib.Path(tmp).glob(f"jsonschema-{VERSION}.tar.gz"))
        if result.returncode != 0 or not archives:
            sys.stderr.write(result.stdout)
            sys.stderr.write(f"could not download jsonschema=={VERSION}'s source distribution with: {' '.join(command)}\n")
            return 1

        # Filled beside the destination and renamed into place, so no reader ever sees half a suite.
        dest.parent.mkdir(parents=True, exist_ok=True)
        staging = pathlib.Path(tempfile.mkdtemp(prefix=".staging-", dir=dest.parent))
        try:
            count = 0
            with tarfile.open(archives[0]) as archive:
                for member in archive.getmembers():
                    # "jsonschema-X/json/tests/draft2020-12/NAME.json": only the folder's own files, not optional/.
                    _, _, inside = member.name.partition("/")
                    if not member.isfile() or not inside.startswith(MEMBER_DIR):
                        continue
                    name = inside[len(MEMBER_DIR):]
                    if "/" in name or not name.endswith(".json"):
                        continue
                    source = archive.extractfile(member)
                    (staging / name).write_bytes(source.read())
                    count += 1
            if count == 0:
                sys.stderr.write(f"jsonschema-{VERSION}.tar.gz has no {MEMBER_DIR}*.json\n")
                return 1
            (staging / MARKER).write_text(f"{count} files from jsonschema {VERSION}'s source distribution\n")
            if dest.exists():
                shutil.rmtree(dest)
            try:
                staging.rename(dest)
            except OSError:
                # Another run got there first; its folder is as good as ours.
                if not (dest / MARKER).is_file():
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    print(dest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
