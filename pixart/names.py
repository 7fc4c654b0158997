"""The choices users name on the command line, in one torch-free place.

The pipeline and the generation store check their settings against these tables, and the command
line builds its option choices from them, so ``pixart-bench --help`` lists the same names the library
accepts without importing torch.
"""

# sampler name → default number of steps (``pixart.pipeline.make_scheduler`` builds each one)
SAMPLERS = {"dpm-solver": 20, "sde-dpm-solver": 50, "sa-solver": 25, "iddpm": 100, "ddpm": 100}
# the unconditional branch of classifier-free guidance: the checkpoint's trained y_embedding, or T5("")
NULL_CAPTIONS = ("trained", "empty-string")
# weight dtype name → the torch dtype's attribute name (``getattr(torch, DTYPES[name])``)
DTYPES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}
