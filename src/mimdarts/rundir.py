"""Run folders: creation, atomic file writes, the JSON-lines log and checkpoints."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from .errors import RunDirError


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename.

    A reader sees either the old file or the complete new one, never a half-written one;
    on failure (disk full...) the temporary file is removed and the old file is untouched.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise RunDirError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
        raise


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


class RunDir:
    """A run folder holding config.yaml, log.jsonl, genotype.json and checkpoint.pt."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    @classmethod
    def create(cls, path: str | Path, overwrite: bool = False) -> RunDir:
        """Create the folder; an existing non-empty folder is refused unless ``overwrite``."""
        p = Path(path)
        if p.exists() and not p.is_dir():
            raise RunDirError(f"run folder {str(p)!r} exists and is not a folder")
        if p.is_dir() and any(p.iterdir()) and not overwrite:
            raise RunDirError(f"run folder {str(p)!r} already exists; pass --overwrite to replace "
                              "it or choose another --run-name")
        try:
            p.mkdir(parents=True, exist_ok=True)
            if overwrite:
                for name in ("log.jsonl", "genotype.json", "checkpoint.pt", "config.yaml"):
                    (p / name).unlink(missing_ok=True)
            probe = p / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise RunDirError(f"cannot create run folder {str(p)!r}: {e.strerror or e}") from None
        return cls(p)

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def log_path(self) -> Path:
        return self.path / "log.jsonl"

    @property
    def genotype_path(self) -> Path:
        return self.path / "genotype.json"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    def write_text(self, name: str, text: str) -> None:
        atomic_write_text(self.path / name, text)

    def append_log(self, record: dict[str, Any]) -> None:
        """Append one JSON line (flushed and fsynced, so a crash loses at most this line)."""
        line = json.dumps(record, sort_keys=False) + "\n"
        try:
            with open(self.log_path, "a") as f:
                f.write(line)
                f.flush()
                os.fsync(f.fileno())
        except OSError as e:
            raise RunDirError(f"cannot write {str(self.log_path)!r}: {e.strerror or e}") from None

    def read_log(self) -> list[dict[str, Any]]:
        if not self.log_path.is_file():
            return []
        return [json.loads(line) for line in self.log_path.read_text().splitlines() if line.strip()]

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Atomically save a checkpoint of tensors, numbers and strings (weights_only-safe)."""
        import io
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.checkpoint_path, buf.getvalue())

    def load_checkpoint(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        p = self.checkpoint_path
        if not p.is_file():
            raise RunDirError(f"no checkpoint in {str(self.path)!r}")
        try:
            return torch.load(p, map_location=map_location, weights_only=True)
        except Exception as e:
            raise RunDirError(f"checkpoint {str(p)!r} is unreadable (truncated or corrupted?): "
                              f"{type(e).__name__}") from None


def run_metadata(seed: int, device: str) -> dict[str, Any]:
    """How a run's numbers were made: library, torch and Python versions, git state, device."""
    import platform
    import subprocess

    from . import __version__

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], capture_output=True, text=True, timeout=5,
                                  cwd=Path(__file__).parent).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return ""

    dev = device
    if device.startswith("cuda") and torch.cuda.is_available():
        dev = f"{device} ({torch.cuda.get_device_name()})"
    elif device == "cpu":
        dev = f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"
    return {
        "mimdarts": __version__, "torch": torch.__version__, "python": platform.python_version(),
        "git_commit": git("rev-parse", "HEAD"), "git_dirty": bool(git("status", "--porcelain")),
        "seed": seed, "device": dev, "host": platform.node(),
    }
