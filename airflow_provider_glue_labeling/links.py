"""Console links from the operators to the Glue ML transform."""

from __future__ import annotations

from airflow.providers.amazon.aws.links.base_aws import BASE_AWS_CONSOLE_LINK, BaseAwsLink


class GlueMLTransformLink(BaseAwsLink):
    """Link to the ML transform's page in the AWS Glue console, in the run's region."""

    name = "AWS Glue ML Transform"
    key = "glue_ml_transform"
    format_str = (
        BASE_AWS_CONSOLE_LINK
        + "/glue/home?region={region_name}#/v2/etl-configuration/ml-transforms/view/{transform_id}"
    )
