"""Which engine runs the net when predicting: PyTorch, or ONNX Runtime for speed on a CPU.

A face is one small forward pass, where PyTorch's per-operator overhead dominates; ONNX
Runtime runs the same net, converted in memory when the model loads, two to three times faster
on a CPU (docs/guide/benchmarks.md) with the same probabilities to about 1e-5. `runtime=auto`
(the default of predict, the app and the latency benchmark) takes ONNX Runtime when it is
installed and PyTorch otherwise; training and evaluation always run PyTorch.
"""

import io
import logging
import warnings
from dataclasses import replace

import numpy as np
import torch
from torch import nn

from mer_lightning.core.checkpoint import LoadedModel
from mer_lightning.core.errors import UserError
from mer_lightning.predict.shipped import load_model

log = logging.getLogger(__name__)

RUNTIMES = ("auto", "onnx", "torch")
INPUT_NAME, OUTPUT_NAME = "image", "logits"
OPSET = 17
INSTALL_HINT = "pip install onnxruntime, or runtime=torch"


def onnx_bytes(net: nn.Module, image_size: int, opset: int = OPSET) -> bytes:
    """`net` as an ONNX graph with a dynamic batch axis: normalised float32 RGB images
    (N, 3, S, S) in, class logits out."""
    example = torch.zeros(1, 3, image_size, image_size)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        # torch's newer exporter needs onnxscript; the TorchScript-based one, deprecated but
        # exact for these plain nets, needs neither it nor onnx.
        warnings.filterwarnings("ignore", category=DeprecationWarning, module="torch.onnx")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        torch.onnx.export(
            net,
            (example,),
            buffer,
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}},
            opset_version=opset,
            dynamo=False,
        )
    return buffer.getvalue()


class OnnxRuntimeNet(nn.Module):
    """A net run by ONNX Runtime behind the nn.Module call the pipeline makes.

    Inference only: it takes and returns torch tensors so that mirror averaging and the
    softmax stay the shared code of core/models/tta.py and core/checkpoint.py.
    """

    def __init__(self, graph: bytes, threads: int) -> None:
        super().__init__()
        import onnxruntime

        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = onnxruntime.InferenceSession(
            graph, options, providers=["CPUExecutionProvider"]
        )

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Logits for normalised images (N, 3, S, S)."""
        array = np.ascontiguousarray(images.detach().cpu().numpy(), dtype=np.float32)
        return torch.from_numpy(self.session.run([OUTPUT_NAME], {INPUT_NAME: array})[0])


def onnxruntime_installed() -> bool:
    """Whether `import onnxruntime` works in this environment."""
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def with_runtime(model: LoadedModel, runtime: str) -> LoadedModel:
    """`model` with its net run by `runtime` (auto | onnx | torch); see the module doc."""
    if runtime not in RUNTIMES:
        raise UserError(f"runtime={runtime} must be one of {list(RUNTIMES)}; e.g. runtime=auto")
    if runtime == "torch" or (runtime == "auto" and not onnxruntime_installed()):
        if runtime == "auto":
            log.info("onnxruntime is not installed: the net runs on PyTorch (slower on a CPU)")
        return model
    if not onnxruntime_installed():
        raise UserError(f"runtime=onnx needs ONNX Runtime, which is not installed; {INSTALL_HINT}")
    graph = onnx_bytes(model.net, model.image_size)
    return replace(model, net=OnnxRuntimeNet(graph, torch.get_num_threads()))


def engine_name(model: LoadedModel) -> str:
    """`onnxruntime` or `torch`: the engine that runs `model`'s net, for run records."""
    return "onnxruntime" if isinstance(model.net, OnnxRuntimeNet) else "torch"


def load_for_prediction(ckpt: str | None, runtime: str) -> LoadedModel:
    """The model `ckpt` names (the shipped one when None) on the engine `runtime` names:
    what predict, the app, the dev-set scorer and the latency benchmark all run."""
    return with_runtime(load_model(ckpt), runtime)
