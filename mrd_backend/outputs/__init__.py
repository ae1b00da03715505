"""What a run writes: the run folder (folder.py) and its figures (figures.py)."""
