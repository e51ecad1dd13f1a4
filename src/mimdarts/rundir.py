"""Run folders: creation, atomic file writes, the JSON-lines log and checkpoints."""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from .errors import RunDirError
from .records import parse_log, parse_record


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort: not every platform allows it)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, data: bytes, keep_previous: Path | None = None,
                       delay_s: float = 0.0) -> None:
    """Write ``data`` to ``path`` via a temporary file, fsync and rename.

    A reader sees either the old file or the complete new one, never a half-written one;
    on failure (disk full...) the temporary file is removed, the old file is untouched and a
    :class:`RunDirError` says why. ``keep_previous``: first make the old ``path`` (if any) also
    available under this name (``path`` itself is never missing). ``delay_s``: a testing aid,
    a sleep between the complete temporary file and the rename.
    """
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        # mkstemp makes the file 0600; a run's files follow the umask like any other tool's
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        if keep_previous is not None and path.is_file():
            _keep_copy(path, Path(keep_previous))
        if delay_s > 0:
            time.sleep(delay_s)
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise RunDirError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
        raise


def _umask() -> int:
    """The process's umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _keep_copy(src: Path, dst: Path) -> None:
    """Atomically make ``dst`` a copy of ``src`` (a hard link where the filesystem allows)."""
    tmp = dst.with_name(f".{dst.name}.link.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        tmp.unlink(missing_ok=True)
        atomic_write_bytes(dst, src.read_bytes())
        return
    os.replace(tmp, dst)
    tmp.unlink(missing_ok=True)  # rename is a no-op when both already name the same file


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def save_png(image: torch.Tensor, path: Path) -> None:
    """Write ``image`` ``[3, H, W]`` in [0, 1] as a PNG, encoded in memory and written
    atomically (a full disk leaves no half picture)."""
    import io

    from torchvision.utils import save_image
    buf = io.BytesIO()
    save_image(image, buf, format="png")
    atomic_write_bytes(Path(path), buf.getvalue())


# What a failed log or checkpoint write (a full disk, a file-size limit) leaves, and what to do
KEPT = ("; the last checkpoint and the log lines before it are kept: free space, then rerun "
        "with --resume auto to continue")


def compose_name(*parts: str) -> str:
    """A run folder name from descriptive ``parts`` joined by ``-``, leaving out a part whose
    ``-``-separated words another part already holds (``nb201``, ``nb201``, ``nb201-tiny``
    -> ``nb201-tiny``; of equal parts the first stays), so names do not repeat the preset."""
    words = [set(filter(None, p.split("-"))) for p in parts]
    kept = [p for i, p in enumerate(parts) if words[i] and not any(
        words[i] <= words[j] and (words[i] != words[j] or j < i)
        for j in range(len(parts)) if j != i)]
    return "-".join(kept)


def default_run_name(cfg: Any, *words: str) -> str:
    """A run folder's name when none is given: the preset, ``words`` (the space and the
    objective; the network and the cell), each setting that changes the result and differs
    from the preset (from the declared roles: ``w_lr0.05``), the seed and a time stamp."""
    from .config import changed_from_preset, method_fields
    results = method_fields(type(cfg))
    changed = [re.sub(r"[^A-Za-z0-9_.-]", "_", f"{k}{v}") for k, v in changed_from_preset(cfg)
               if k in results and k != "genotype" and str(v) not in words]  # said already
    stamp = time.strftime("%Y%m%d-%H%M%S")
    return "-".join([compose_name(cfg.preset or "custom", *words), *changed,
                     f"s{cfg.run.seed}", stamp])


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
            if overwrite:  # what a run writes (a sweep's trial.log stays: it appends)
                for name in ("log.jsonl", "genotype.json", "checkpoint.pt", "checkpoint.prev.pt",
                             "config.yaml", "result.json", "summary.json", "meta.json"):
                    (p / name).unlink(missing_ok=True)
                for png in p.glob("recon_e*.png"):
                    png.unlink()
                shutil.rmtree(p / "tensorboard", ignore_errors=True)
            probe = p / ".write-test"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise RunDirError(f"cannot create run folder {str(p)!r}: {e.strerror or e}") from None
        return cls(p)

    @classmethod
    def open(cls, path: str | Path) -> RunDir:
        """An existing run folder, to resume: it must hold a config.yaml and be writable."""
        p = Path(path)
        if not p.is_dir():
            raise RunDirError(f"run folder {str(p)!r} does not exist (or is not a folder)")
        if not (p / "config.yaml").is_file():
            raise RunDirError(f"{str(p)!r} is not a run folder: it holds no config.yaml")
        if not os.access(p, os.W_OK):
            raise RunDirError(f"run folder {str(p)!r} is not writable")
        for stale in p.glob(".*.tmp"):  # temporary files of a run killed while writing
            stale.unlink(missing_ok=True)
        return cls(p)

    @property
    def config_path(self) -> Path:
        return self.path / "config.yaml"

    @property
    def log_path(self) -> Path:
        return self.path / "log.jsonl"

    @property
    def checkpoint_path(self) -> Path:
        return self.path / "checkpoint.pt"

    @property
    def previous_checkpoint_path(self) -> Path:
        """The checkpoint before the current one, kept until a new one is complete."""
        return self.path / "checkpoint.prev.pt"

    def write_text(self, name: str, text: str) -> None:
        atomic_write_text(self.path / name, text)

    def append_log(self, record: dict[str, Any]) -> None:
        """Append one JSON line. The file is rewritten atomically, so a crash or a full disk
        leaves the old log whole, never a half line (logs are small: one line per epoch)."""
        line = (json.dumps(record, sort_keys=False) + "\n").encode()
        try:
            old = self.log_path.read_bytes() if self.log_path.is_file() else b""
        except OSError as e:
            raise RunDirError(f"cannot read {str(self.log_path)!r}: {e.strerror or e}") from None
        try:
            atomic_write_bytes(self.log_path, old + line)
        except RunDirError as e:
            raise RunDirError(f"{e}{KEPT}") from None

    def truncate_log(self, lines: int) -> list[dict[str, Any]]:
        """Keep the first ``lines`` lines of the log (those a checkpoint has seen) and return
        them as records; lines written after that checkpoint are dropped."""
        text = self.log_path.read_text() if self.log_path.is_file() else ""
        kept = text.splitlines(keepends=True)[:lines]
        if len(kept) < lines:
            raise RunDirError(f"{str(self.log_path)!r} has {len(kept)} lines but the checkpoint "
                              f"was written after {lines}; the log was truncated or replaced")
        new = "".join(kept)
        if new != text:
            atomic_write_text(self.log_path, new)
        try:
            return [parse_record(line) for line in kept]
        except json.JSONDecodeError:
            raise RunDirError(f"{str(self.log_path)!r} holds a line that is not JSON") from None

    def read_log(self) -> list[dict[str, Any]]:
        if not self.log_path.is_file():
            return []
        return parse_log(self.log_path.read_text())

    def save_checkpoint(self, state: dict[str, Any], delay_s: float = 0.0) -> None:
        """Atomically save a checkpoint of tensors, numbers and strings (weights_only-safe);
        the one it replaces stays as checkpoint.prev.pt. ``delay_s``: a testing aid (a sleep
        before the rename, to kill a run while it writes)."""
        import io
        buf = io.BytesIO()
        torch.save(state, buf)
        try:
            atomic_write_bytes(self.checkpoint_path, buf.getvalue(),
                               keep_previous=self.previous_checkpoint_path, delay_s=delay_s)
        except RunDirError as e:
            raise RunDirError(f"{e}{KEPT}") from None

    def load_checkpoint(self, map_location: str | torch.device = "cpu") -> dict[str, Any]:
        """The checkpoint, read with ``weights_only=True``; a clear error if it is missing or
        unreadable (never a silent fresh start)."""
        p = self.checkpoint_path
        prev = self.previous_checkpoint_path
        hint = (f"; the previous one is {str(prev)!r} (move it to checkpoint.pt to resume from it)"
                if prev.is_file() else "")
        if not p.is_file():
            raise RunDirError(f"no checkpoint in {str(self.path)!r}{hint}")
        try:
            state = torch.load(p, map_location=map_location, weights_only=True)
        except Exception as e:
            raise RunDirError(f"checkpoint {str(p)!r} is unreadable (truncated or corrupted?): "
                              f"{type(e).__name__}{hint}") from None
        if not isinstance(state, dict):
            raise RunDirError(f"checkpoint {str(p)!r} does not hold a mimdarts checkpoint")
        return state


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
