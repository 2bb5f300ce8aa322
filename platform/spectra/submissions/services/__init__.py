"""Writes of the submissions app, one module per sub-domain: artifacts, submissions (creation and its
shard plan), runs (messages from the evaluation workers) and results (the aggregate step). Import from the
sub-modules."""
