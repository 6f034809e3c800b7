"""A directory of cassette files: `<dir>/<name>.json`, found recursively when loading.

Saving refuses to replace an existing cassette unless asked (`overwrite=True`): fixtures are
reviewed artefacts, and a re-recording should be a deliberate act. Writes are atomic (a
temporary file renamed into place), so an interrupted recording never leaves half a cassette.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

from proxy.cassettes import serializer
from proxy.cassettes.cassette import Cassette

_NAME = re.compile(r"^[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*$")
SUFFIX = ".json"


class CassetteExists(FileExistsError):
    """A cassette of that name is already recorded (pass overwrite=True to replace it)."""


class CassetteDirectory:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)

    def path_for(self, name: str) -> Path:
        if not _NAME.match(name) or ".." in name.split("/"):
            raise ValueError(f"cassette names are [A-Za-z0-9_.-] segments, not {name!r}")
        return self.path / (name + SUFFIX)

    def exists(self, name: str) -> bool:
        return self.path_for(name).exists()

    def names(self) -> list[str]:
        """Names of every cassette below the directory (relative paths without `.json`)."""
        return [name for name, _ in self._cassette_files()]

    def load(self, name: str) -> Cassette:
        path = self.path_for(name)
        return serializer.loads(path.read_text(encoding="utf-8"), name)

    def load_all(self) -> list[Cassette]:
        """Every cassette below the directory, sorted by name; other JSON files are skipped."""
        out = []
        for name, data in self._cassette_files():
            out.append(serializer.from_data(data, name))
        return out

    def save(self, cassette: Cassette, *, overwrite: bool = False) -> Path:
        path = self.path_for(cassette.name)
        if path.exists() and not overwrite:
            raise CassetteExists(f"{path} exists; pass overwrite to replace it")
        path.parent.mkdir(parents=True, exist_ok=True)
        text = serializer.dumps(cassette)
        fd, tmp = tempfile.mkstemp(prefix=".cassette-", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
            os.chmod(tmp, 0o644)  # mkstemp makes it private; a fixture is an ordinary file
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        return path

    def _cassette_files(self) -> list[tuple[str, dict]]:
        if not self.path.is_dir():
            raise FileNotFoundError(f"no cassette directory at {self.path}")
        found = []
        for file in sorted(self.path.rglob("*" + SUFFIX)):
            text = file.read_text(encoding="utf-8", errors="replace")
            try:
                data = json.loads(text)
            except ValueError as exc:
                if serializer.FORMAT in text[:200]:  # a cassette, damaged: say so, loudly
                    raise serializer.CassetteFormatError(
                        f"{file}: not valid JSON ({exc})") from None
                continue  # not ours: some other JSON file
            if serializer.is_cassette(data):
                found.append((file.relative_to(self.path).with_suffix("").as_posix(), data))
        return found
