"""The optimization: the loop (loop.py: `optimize`, `Run`), what it optimizes (shape.py, material.py), the
regularizers, checkpoints and step timing. `mrd_backend.optimize` is the function (loop.optimize); no module is
named `optimize`."""
