"""A task's Glue run from start to end: the decisions (``lifecycle``) and the operators' shared flow (``flow``)."""
