"""AWS Glue ETL job script: apply a FindMatches transform to its source table and write every record
with its match id (records with the same ``match_id`` are one entity), as CSV under an S3 path.

Job arguments: ``--transform_id`` (tfm-...) and ``--output_path`` (s3://bucket/prefix/); optional
``--compute_match_confidence_scores true`` adds a ``match_confidence_score`` column (0 to 1, the
same for every record of a match group). The source is the transform's own input table
(``GetMLTransform``'s ``InputRecordTables``). It runs in Glue 2.0, the only version whose
``awsglueml`` has FindMatches (``awsglue`` and ``awsglueml`` exist only in Glue), from
``glue_findmatches_matching.py``; the emulator runs any job whose script calls FindMatches.apply
with these arguments.
"""

import sys

import boto3
from awsglue.context import GlueContext
from awsglue.job import Job
from awsglue.utils import getResolvedOptions
from awsglueml.transforms import FindMatches
from pyspark.context import SparkContext

# getResolvedOptions fails on an argument the run was not given: ask for the optional one only when given.
optional = [name for name in ["compute_match_confidence_scores"] if f"--{name}" in sys.argv]
args = getResolvedOptions(sys.argv, ["JOB_NAME", "transform_id", "output_path", *optional])
glue_context = GlueContext(SparkContext.getOrCreate())
job = Job(glue_context)
job.init(args["JOB_NAME"], args)

table = boto3.client("glue").get_ml_transform(TransformId=args["transform_id"])["InputRecordTables"][0]
records = glue_context.create_dynamic_frame.from_catalog(
    database=table["DatabaseName"], table_name=table["TableName"], transformation_ctx="records"
)
matched = FindMatches.apply(
    frame=records,
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
