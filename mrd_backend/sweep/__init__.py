"""`mrd sweep`: grids of runs on Ray or SLURM (submitit), resumable, with aggregates and optional W&B tracking."""
