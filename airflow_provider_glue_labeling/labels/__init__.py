"""Labels: Glue's labeling file format (``format``) and the labeling sets and labels files in S3 (``files``)."""
