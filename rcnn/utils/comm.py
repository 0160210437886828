"""Processes and devices: distributed training helpers (``torchrun``, one process per device), device
selection, moving batches to a device and the AMP dtype.

    init_distributed()                  # reads RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR, MASTER_PORT
    device = select_device("auto")      # cuda:LOCAL_RANK under torchrun on a GPU machine, else cpu
    model = wrap_ddp(model.to(device), device)   # DistributedDataParallel when world_size > 1

Everything degrades to the single-process case when the process group is not initialised: rank 0,
world size 1, :func:`synchronize` a no-op, :func:`all_gather_object` ``[obj]``. The backend is gloo on
the CPU and nccl on CUDA.
"""

from __future__ import annotations

import datetime
import logging
import os
import warnings
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

logger = logging.getLogger(__name__)


def is_initialized() -> bool:
    """True when a default process group exists."""
    return dist.is_available() and dist.is_initialized()


def get_rank() -> int:
    """Global rank of this process (0 without a process group)."""
    return dist.get_rank() if is_initialized() else 0


def get_world_size() -> int:
    """Number of processes (1 without a process group)."""
    return dist.get_world_size() if is_initialized() else 1


def get_local_rank() -> int:
    """Rank on this machine (``LOCAL_RANK`` set by torchrun; 0 otherwise)."""
    return int(os.environ.get("LOCAL_RANK", "0"))


def is_main_process() -> bool:
    """True on global rank 0 (and when not distributed)."""
    return get_rank() == 0


def env_world_size() -> int:
    """``WORLD_SIZE`` from the environment (1 when not launched by torchrun)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def select_device(spec: str | torch.device = "auto") -> torch.device:
    """``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.

    Under torchrun, ``"auto"`` and ``"cuda"`` give ``cuda:LOCAL_RANK``. Asking for CUDA on a machine
    without it, or for a device index that does not exist, raises ``RuntimeError``.
    """
    if isinstance(spec, torch.device):
        spec = str(spec)
    spec = spec.strip().lower()
    if spec == "auto":
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if spec == "cpu":
        return torch.device("cpu")
    if spec == "cuda" or spec.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise RuntimeError(f"device {spec!r} requested but CUDA is not available (use 'cpu' or 'auto')")
        index = get_local_rank() if spec == "cuda" else int(spec.split(":", 1)[1])
        count = torch.cuda.device_count()
        if not 0 <= index < count:
            raise RuntimeError(f"device cuda:{index} requested but only {count} CUDA device(s) are present")
        return torch.device("cuda", index)
    raise ValueError(f"unknown device {spec!r}: expected 'auto', 'cpu', 'cuda' or 'cuda:N'")


def init_distributed(device: str | torch.device = "auto", *, timeout_s: float = 1800.0) -> bool:
    """Initialise the default process group from torchrun's environment when ``WORLD_SIZE > 1``.

    The backend is nccl when ``device`` resolves to CUDA (which is also made the current device), gloo
    otherwise. Returns True when running distributed. Calling it again is harmless.
    """
    if is_initialized():
        return get_world_size() > 1
    if env_world_size() <= 1:
        return False
    missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise RuntimeError(f"WORLD_SIZE > 1 but {', '.join(missing)} not set: launch with torchrun")
    resolved = select_device(device)
    backend = "nccl" if resolved.type == "cuda" else "gloo"
    if resolved.type == "cuda":
        torch.cuda.set_device(resolved)
    dist.init_process_group(
        backend=backend,
        init_method="env://",
        timeout=datetime.timedelta(seconds=timeout_s),
        **({"device_id": resolved} if resolved.type == "cuda" else {}),
    )
    logger.info("process group: backend=%s rank=%d world_size=%d", backend, get_rank(), get_world_size())
    return True


def destroy_distributed(barrier: bool = True) -> None:
    """Tear the default process group down (no-op when there is none).

    With ``barrier`` all ranks meet first, so no rank closes its connections while another still has a
    collective in flight over them (gloo aborts a process whose peer vanishes mid-operation). Pass
    ``barrier=False`` when leaving on an error that the other ranks may not share: they would never
    arrive."""
    if is_initialized():
        if barrier:
            synchronize()
        dist.destroy_process_group()


def synchronize() -> None:
    """Barrier across all processes (no-op when not distributed)."""
    if get_world_size() > 1:
        if dist.get_backend() == "nccl":
            dist.barrier(device_ids=[torch.cuda.current_device()])
        else:
            dist.barrier()


def _collective_device() -> torch.device:
    if dist.get_backend() == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def all_reduce_dict(values: dict[str, Tensor], average: bool = True) -> dict[str, Tensor]:
    """Sum (or average) a dict of scalar tensors over all processes; every process gets the result.

    All processes must pass the same keys. Returns new tensors on the device of the inputs; with one
    process the values come back unchanged (detached).
    """
    if not values:
        return {}
    keys = sorted(values)
    if get_world_size() == 1:
        return {k: values[k].detach() for k in keys}
    like = values[keys[0]]
    stacked = torch.stack([values[k].detach().float().reshape(()) for k in keys]).to(_collective_device())
    dist.all_reduce(stacked)
    if average:
        stacked /= get_world_size()
    stacked = stacked.to(like.device)
    return {k: stacked[i] for i, k in enumerate(keys)}


def all_gather_object(obj: Any) -> list[Any]:
    """Gather a picklable object from every process; returns the list indexed by rank."""
    if get_world_size() == 1:
        return [obj]
    out: list[Any] = [None] * get_world_size()
    dist.all_gather_object(out, obj)
    return out


def broadcast_object(obj: Any, src: int = 0) -> Any:
    """``obj`` from rank ``src`` on every process."""
    if get_world_size() == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def wrap_ddp(model: nn.Module, device: torch.device, *, find_unused_parameters: bool = False) -> nn.Module:
    """Wrap ``model`` (already on ``device``) in DistributedDataParallel when world_size > 1.

    ``find_unused_parameters=True`` is needed when some parameters get no gradient in an iteration.
    """
    if get_world_size() == 1:
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        model, device_ids=device_ids, find_unused_parameters=find_unused_parameters
    )


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel / DataParallel wrapper (or ``model`` itself)."""
    while isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        model = model.module
    return model


def move_to_device(x: Any, device: torch.device) -> Any:
    """Tensors inside (nested) lists, tuples and dicts moved to ``device``; other values unchanged."""
    if isinstance(x, Tensor):
        return x.to(device, non_blocking=x.is_pinned())
    if isinstance(x, dict):
        return {k: move_to_device(v, device) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return type(x)(move_to_device(v, device) for v in x)
    return x


def cpu_has_bf16() -> bool:
    """Whether oneDNN computes bf16 natively on this CPU (AVX512-BF16 / AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def resolve_amp_dtype(
    amp: bool, device: torch.device, amp_dtype: str | torch.dtype | None
) -> torch.dtype | None:
    """None without AMP; else ``amp_dtype`` ("float16"/"fp16", "bfloat16"/"bf16"), defaulting to fp16 on
    CUDA and bf16 on the CPU. Where the CPU has no native bf16 (oneDNN reports none), the default is None
    (fp32, with a warning): emulated bf16 is slower than fp32 there."""
    if not amp:
        return None
    if amp_dtype is None:
        if device.type == "cuda":
            return torch.float16
        if not cpu_has_bf16():
            warnings.warn("amp: this CPU has no native bf16, training in fp32", stacklevel=2)
            return None
        return torch.bfloat16
    if isinstance(amp_dtype, torch.dtype):
        return amp_dtype
    names = {
        "float16": torch.float16,
        "fp16": torch.float16,
        "bfloat16": torch.bfloat16,
        "bf16": torch.bfloat16,
    }
    if amp_dtype not in names:
        raise ValueError(f"unknown amp_dtype {amp_dtype!r}: expected one of {', '.join(names)}")
    return names[amp_dtype]
