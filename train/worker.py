"""`python -m train.worker RUN_FOLDER`: one training run as its own process (one per rank under torchrun).

It reads config.json and the items from the run folder and writes only there: status.json (state,
pid, host, step, error), trainer_log.jsonl, TensorBoard events, checkpoints, adapter/ and
metrics.json. A SIGTERM (or SIGINT) asks for the same clean stop as the run folder's `stop` file:
the current optimizer step ends and a checkpoint is saved. Exit code 0 when the run completed,
stopped or stopped early, 1 when it failed, 2 for a wrong run folder.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from schema.run_state import RunState
from tools.core.errors import UserError
from train.trainer import job_for_run_folder, run_job


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m train.worker RUN_FOLDER", file=sys.stderr)
        return 2
    folder = Path(args[0]).resolve()
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

    rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    try:
        job = job_for_run_folder(folder, rank, world_size)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    def stop(signum, frame):
        job.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"worker rank {rank}/{world_size} pid {os.getpid()}: training {job.run_name}"
          + (f" from {job.resume_from.name}" if job.resume_from else ""), flush=True)
    run_job(job)
    print(f"worker rank {rank}: {job.state}" + (f": {job.error}" if job.error else ""), flush=True)
    return 1 if job.state == RunState.FAILED else 0


if __name__ == "__main__":
    sys.exit(main())
