"""What the benchmark sections share: the setting of their measurements, the machine line, the markdown
table, the command that measures a section, and the command line of a section module run alone."""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
from collections.abc import Callable, Iterator

import torch


@contextlib.contextmanager
def measuring(device: str, threads: int) -> Iterator[None]:
    """The setting of a section's measurements: refuses a CUDA device where there is none, and runs the
    block with ``threads`` intra-op CPU threads (restored afterwards)."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {device!r} asked for, but CUDA is not available")
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous_threads)


def section_main(doc: str, run_section: Callable[..., str], argv: list[str] | None, quick_help: str) -> None:
    """``python -m tools.benchmarks.<section> [--quick] [--device D] [--threads N] [--reps R]`` (from the
    repository root): print the markdown of ``run_section``. ``doc``: the module docstring (its first
    paragraph is the description)."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=None)
    args = parser.parse_args(argv)
    print(run_section(device=args.device, quick=args.quick, threads=args.threads, reps=args.reps))


def cpu_model() -> str:
    """The CPU's "model name" from /proc/cpuinfo, else what :mod:`platform` knows."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(device: str, threads: int) -> str:
    """One line: device (CPU model or GPU name), cores, torch version, intra-op threads."""
    import torchvision

    where = (
        f"{torch.cuda.get_device_name(device)} (device {device})"
        if device.startswith("cuda")
        else f"CPU ({cpu_model()}; device cpu)"
    )
    return (
        f"{where}, {os.cpu_count()} cores, torch {torch.__version__}, torchvision {torchvision.__version__}, "
        f"{threads} intra-op thread(s)"
    )


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a markdown table: the header, the separator, one line per row of cells."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def measured_on(device: str, threads: int, command: str) -> list[str]:
    """The lines after a section's table: where it was measured, the command that measured it, and the
    start of its notes."""
    return ["", f"Measured on {machine_description(device, threads)}; `{command}`.", "", "Notes:"]


def command_line(section: str, *, device: str, quick: bool, threads: int, reps: int | None) -> str:
    """The ``tools/benchmark.py`` command that measures ``section`` with these settings (the defaults left
    out), as the sections print it under their tables."""
    command = f"python tools/benchmark.py --sections {section}" + (" --quick" if quick else "")
    command += f" --device {device}" if device != "cpu" else ""
    command += f" --threads {threads}" if threads != 1 else ""
    return command + (f" --reps {reps}" if reps else "")
