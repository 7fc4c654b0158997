"""``python -m bench COMMAND ...`` is ``pixart-bench COMMAND ...``; it is how accelerate starts the
command in several processes: ``accelerate launch --num_processes 8 -m bench train --config ...``."""

from bench.cli import main

main()
