"""devpi's index as a run sees it: how to reach it, its files, the facts kept across runs."""
