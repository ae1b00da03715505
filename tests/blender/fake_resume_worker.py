"""A stand-in backend worker for tests/test_addon_progress.py's Resume test: records its arguments in the file
MRD_TEST_ARGV names, then streams steps 4 and 5 of 6 of the run folder after `--resume` and ends it as done."""
import json
import os
import sys


def emit(**ev):
    print(json.dumps(ev), flush=True)


with open(os.environ["MRD_TEST_ARGV"], "w") as f:
    f.write(json.dumps(sys.argv[1:]))
out = sys.argv[sys.argv.index("--resume") + 1]
emit(event="hello", protocol=1, pid=os.getpid(), python="3", out=out, epochs=6)
for step in (4, 5):
    emit(event="step", step=step, epochs=6, loss=0.1, similarity=0.9, elapsed=float(step))
with open(os.path.join(out, "report.json"), "w") as f:
    json.dump({"status": "done"}, f)
emit(event="done", status="done", out=out, steps=2)
