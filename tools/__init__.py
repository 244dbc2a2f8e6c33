"""Tools around the project: helper processes, fixed test sets, system packages, the single-GPU harness."""
