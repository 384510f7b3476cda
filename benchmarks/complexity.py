"""Every architecture entry's parameters and GFLOPs at its default (paper) widths: the models page's table.

    python benchmarks/complexity.py [--quick]

Runs `segbench list architectures --complexity --size 256` (one input channel, one class; a multiply-add counts 2,
``torch.utils.flop_counter``) and prints its output under the heading. Recorded in
``benchmarks/results/complexity.txt``, which the models and losses page embeds. ``--quick``: at 64 px.
"""

from __future__ import annotations

import subprocess

import _common as bench


def main(argv=None) -> None:
    parser = bench.parser(__doc__, size=64)
    parser.add_argument("--size", type=int, default=256, help="input size of the FLOPs (default 256)")
    args = bench.parse(parser, argv)
    listed = subprocess.run([str(bench.BIN / "segbench"), "list", "architectures", "--complexity", "--size",
                             str(args.size)], capture_output=True, text=True, check=True, cwd=bench.REPO)
    print(bench.heading(f"`segbench list architectures --complexity --size {args.size}`"))
    print(listed.stdout.rstrip())


if __name__ == "__main__":
    main()
