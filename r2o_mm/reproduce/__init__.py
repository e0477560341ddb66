"""A paper table from one command: the job graph (graph.py) and how it runs (launch.py)."""
