"""AWS Glue ETL job script: match new records against records matched before with a FindMatches
transform (``FindIncrementalMatches``) and write them all with their match ids, as CSV under an S3
path. The records matched before keep their ``match_id``; a new record joins the group it matches
or starts one of its own.

Job arguments: ``--transform_id`` (tfm-...), ``--existing_path`` (CSV with a header, the records
matched before with their ``match_id``: a FindMatches job's output), ``--incremental_path`` (CSV
with the same columns, no ``match_id``: the new records) and ``--output_path``
(s3://bucket/prefix/); optional ``--compute_match_confidence_scores true`` adds a
``match_confidence_score`` column. It runs in Glue 2.0, the only version that supports incremental
matching (``awsglue`` and ``awsglueml`` exist only in Glue); the emulator runs any job whose script
calls FindIncrementalMatches.apply with these arguments.
"""

import sys

from awsglue.context import GlueContext
from awsglue.dynamicframe import DynamicFrame
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from awsglueml.transforms import FindIncrementalMatches
from pyspark.context import SparkContext

# getResolvedOptions fails on an argument the run was not given: ask for the optional one only when given.
optional = [name for name in ["compute_match_confidence_scores"] if f"--{name}" in sys.argv]
args = getResolvedOptions(
    sys.argv, ["JOB_NAME", "transform_id", "existing_path", "incremental_path", "output_path", *optional]
)
glue_context = GlueContext(SparkContext.getOrCreate())
job = Job(glue_context)
job.init(args["JOB_NAME"], args)


def read_csv(path: str, name: str) -> DynamicFrame:
    """The records of the CSV files at ``path`` (with a header)."""
    return glue_context.create_dynamic_frame.from_options(
        connection_type="s3",
        connection_options={"paths": [path], "recurse": True},
        format="csv",
        format_options={"withHeader": True},
        transformation_ctx=name,
    )


matched = FindIncrementalMatches.apply(
    existingFrame=read_csv(args["existing_path"], "existing"),
    incrementalFrame=read_csv(args["incremental_path"], "incremental"),
    transformId=args["transform_id"],
    computeMatchConfidenceScores=args.get("compute_match_confidence_scores", "false").lower() == "true",
    transformation_ctx="matched",
)
glue_context.write_dynamic_frame.from_options(
    frame=matched,
    connection_type="s3",
    connection_options={"path": args["output_path"]},
    format="csv",
    transformation_ctx="written",
)
job.commit()
