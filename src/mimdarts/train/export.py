"""Packaging a trained network: one ``.pt`` file, and ONNX.

The ``.pt`` model file holds the weights as plain tensors and the genotype, the training
config and the dataset statistics as JSON strings, so it loads with
``torch.load(weights_only=True)`` (no pickled code) and :func:`load_trained` rebuilds the
network in one call::

    from mimdarts.train.export import load_trained
    m = load_trained("model.pt")            # or a run folder
    logits = m(images)                      # images: uint8 or [0, 1] float [B, 3, H, W]

ONNX export (optional extra ``export``: ``pip install 'mimdarts[export]'``) writes the
eval-mode network with input ``images`` ``[batch, 3, H, W]`` (normalised) and output
``logits`` ``[batch, classes]``, with a dynamic batch axis.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import config_from_dict
from ..data import DatasetInfo, dataset_info
from ..errors import RunDirError
from ..rundir import RunDir, atomic_write_bytes
from ..spaces import Architecture, get_space
from .config import TrainConfig
from .loop import CHECKPOINT_FORMAT, build_network
from .networks import get_network

MODEL_FORMAT = "mimdarts-model-v1"


@dataclass
class TrainedModel:
    """A trained network in eval mode with what is needed to use it."""

    model: nn.Module  # returns (logits, None) in eval mode
    genotype: Architecture
    config: TrainConfig
    info: DatasetInfo  # classes, normalisation statistics, input size
    epoch: int  # epochs the weights were trained for

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 or [0, 1] float ``[B, 3, H, W]`` -> the normalised input the network expects."""
        x = images.float() / 255.0 if images.dtype == torch.uint8 else images.float()
        mean = torch.tensor(self.info.mean, device=x.device)[:, None, None]
        std = torch.tensor(self.info.std, device=x.device)[:, None, None]
        return (x - mean) / std

    @torch.no_grad()
    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        """Logits ``[B, classes]`` for raw images (uint8, or float in [0, 1], ``[B, 3, H, W]``;
        normalised here as the network was trained): ``model = load_trained(...); model(x)``."""
        p = next(self.model.parameters())
        return self.model(self.normalize(images.to(p.device)))[0]

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """Class indices ``[B]`` for raw images (see :meth:`normalize`)."""
        return self(images).argmax(1)


def model_state(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The single-file model content from a training checkpoint (weights only, no optimizer)."""
    if checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise RunDirError(f"checkpoint format {checkpoint.get('format')!r} is not a training "
                          f"checkpoint ({CHECKPOINT_FORMAT}); was it written by `mimdarts train`?")
    return {
        "format": MODEL_FORMAT,
        "epoch": checkpoint["epoch"],
        "network": checkpoint["network"],
        "num_classes": checkpoint["num_classes"],
        "config": checkpoint["config"],
        "genotype": checkpoint["genotype"],
        "weights": checkpoint["model"],
    }


def _read(path: str | Path) -> dict[str, Any]:
    """A model file's content, or a run folder's checkpoint converted to it."""
    p = Path(path)
    if p.is_dir():
        return model_state(RunDir(p).load_checkpoint())
    if not p.is_file():
        raise RunDirError(f"model file {str(p)!r} does not exist (expected a .pt written by "
                          "`mimdarts export` or a training run folder)")
    try:
        state = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as e:
        raise RunDirError(f"model file {str(p)!r} is unreadable: {type(e).__name__}") from None
    if not isinstance(state, dict):
        raise RunDirError(f"{str(p)!r} is not a mimdarts model file")
    if state.get("format") == CHECKPOINT_FORMAT:
        return model_state(state)
    if state.get("format") != MODEL_FORMAT:
        raise RunDirError(f"{str(p)!r} is not a mimdarts model file (format "
                          f"{state.get('format')!r}, expected {MODEL_FORMAT!r})")
    return state


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> TrainedModel:
    """Rebuild a trained network from a model file (or a training run folder), in eval mode."""
    state = _read(path)
    cfg: TrainConfig = config_from_dict(json.loads(state["config"]), TrainConfig)
    spec = get_network(state["network"])
    arch = get_space(spec.space).load_arch(state["genotype"])
    model = build_network(cfg, arch, state["num_classes"])
    model.load_state_dict(state["weights"])
    info = dataclasses.replace(dataset_info(cfg.data), num_classes=state["num_classes"])
    return TrainedModel(model.to(device).eval(), arch, cfg, info, state["epoch"])


def save_trained(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write ``run_dir``'s final weights as one model file (default ``run_dir/model.pt``)."""
    if not Path(run_dir).is_dir():
        raise RunDirError(f"run folder {str(run_dir)!r} does not exist")
    state = model_state(RunDir(run_dir).load_checkpoint())
    out_path = Path(out) if out is not None else Path(run_dir) / "model.pt"
    buf = io.BytesIO()
    torch.save(state, buf)
    atomic_write_bytes(out_path, buf.getvalue())
    return out_path


class _Logits(nn.Module):
    """The network's eval-mode logits alone (ONNX has no use for the absent aux output)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)[0]


def check_opset(opset: int) -> None:
    """Refuse an opset the exporter cannot write correctly: below its minimum the file it
    writes fails the ONNX checker and onnxruntime (opset 5 lacks attributes its ops need)."""
    from torch.onnx._constants import ONNX_MAX_OPSET, ONNX_MIN_OPSET
    if not ONNX_MIN_OPSET <= opset <= ONNX_MAX_OPSET:
        raise RunDirError(f"--opset {opset} is outside what the exporter writes correctly; "
                          f"choose {ONNX_MIN_OPSET} to {ONNX_MAX_OPSET} (default 17)")


def _write_onnx(trained: TrainedModel, path: str, opset: int) -> None:
    try:
        import onnx  # noqa: F401  (the exporter needs it; fail early with a clear message)
    except ImportError:
        raise RunDirError("ONNX export needs the 'onnx' package: pip install 'mimdarts[export]'") \
            from None
    size = trained.info.image_size
    model = _Logits(trained.model).cpu().eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(model, (torch.zeros(2, 3, size, size),), path, dynamo=False,
                          opset_version=opset, input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}})


def verify_onnx(trained: TrainedModel, path: str | Path, atol: float = 1e-4) -> str:
    """Check an exported file: the ONNX checker (full), then, when onnxruntime is installed,
    its logits on 3 random images against PyTorch's (a batch size other than the export's,
    so the dynamic axis is checked too). Returns what was checked; raises a one-line
    :class:`RunDirError` on any failure."""
    import onnx
    try:
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    except Exception as e:  # onnx raises its own ValidationError and others
        raise RunDirError(f"the exported ONNX file fails the ONNX checker: "
                          f"{str(e).splitlines()[0][:160]}") from None
    try:
        import onnxruntime as ort
    except ImportError:
        return "ONNX checker passed (onnxruntime not installed: outputs not compared)"
    size = trained.info.image_size
    x = torch.randn(3, 3, size, size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        expected = _Logits(trained.model).cpu().eval()(x).numpy()
    try:
        got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(
            None, {"images": x.numpy()})[0]
    except Exception as e:
        raise RunDirError(f"onnxruntime cannot run the exported file: "
                          f"{str(e).splitlines()[0][:160]}") from None
    err = float(abs(got - expected).max())
    if got.shape != expected.shape or not err <= atol * max(1.0, float(abs(expected).max())):
        raise RunDirError(f"onnxruntime's logits differ from PyTorch's by {err:.3g} (shape "
                          f"{tuple(got.shape)} vs {tuple(expected.shape)}); the export is wrong")
    return f"ONNX checker passed; onnxruntime logits equal PyTorch's (max difference {err:.1e})"


def export_onnx(trained: TrainedModel, out: str | Path, opset: int = 17) -> tuple[Path, str]:
    """Write ``trained`` as ONNX (input ``images`` [batch, 3, S, S], output ``logits``),
    verified by :func:`verify_onnx` before it takes the name ``out`` (a failed export leaves
    nothing); returns the path and what was verified."""
    check_opset(opset)
    out_path = Path(out)
    fd, tmp = tempfile.mkstemp(dir=out_path.parent if str(out_path.parent) else ".",
                               prefix=f".{out_path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        _write_onnx(trained, tmp, opset)
        checked = verify_onnx(trained, tmp)
        os.replace(tmp, out_path)
    except OSError as e:
        raise RunDirError(f"cannot write {str(out_path)!r}: {e.strerror or e}") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return out_path, checked


def _make_parent(path: Path) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RunDirError(f"cannot create the folder of {str(path)!r}: {e.strerror or e}") from None


def export_run(run_dir: str | Path, out: str | Path | None = None, onnx_out: str | Path | None = None,
               opset: int = 17) -> list[tuple[Path, str]]:
    """``mimdarts export``: the single-file model, and ONNX when ``onnx_out`` is given, each
    with what was checked. The opset and the folders are checked first, and the ONNX file is
    written and verified before the model file, so a failed export writes nothing."""
    if onnx_out is not None:
        check_opset(opset)
    for path in (out, onnx_out):
        if path is not None:
            _make_parent(Path(path))
    onnx_done = (export_onnx(load_trained(run_dir), onnx_out, opset)
                 if onnx_out is not None else None)
    written = [(save_trained(run_dir, out), "")]
    return written + ([onnx_done] if onnx_done else [])
