"""The quality history, as users read it: :func:`read_history`, the rounds' table and chart, the decisions.

The rules live in :mod:`airflow_provider_glue_labeling.quality`; this module is their public face.
"""

from __future__ import annotations

from typing import Any

from airflow_provider_glue_labeling.hooks import AwsConnection
from airflow_provider_glue_labeling.quality.chart import chart_svg as chart_svg
from airflow_provider_glue_labeling.quality.decision import BUDGET_SPENT as BUDGET_SPENT
from airflow_provider_glue_labeling.quality.decision import GOOD_ENOUGH as GOOD_ENOUGH
from airflow_provider_glue_labeling.quality.decision import KEEP_LABELING as KEEP_LABELING
from airflow_provider_glue_labeling.quality.decision import PLATEAU as PLATEAU
from airflow_provider_glue_labeling.quality.decision import STOPS as STOPS
from airflow_provider_glue_labeling.quality.decision import decide as decide
from airflow_provider_glue_labeling.quality.rounds import read_rounds
from airflow_provider_glue_labeling.quality.rounds import table as table


def read_history(
    history_s3_path: str,
    aws_conn_id: str | None = "aws_default",
    transform_id: str | None = None,
    *,
    region_name: str | None = None,
    verify: bool | str | None = None,
    botocore_config: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """The rounds recorded under ``history_s3_path``, oldest first.

    :param history_s3_path: the S3 prefix the evaluations recorded their rounds under.
    :param aws_conn_id: the Airflow AWS connection to read it with.
    :param transform_id: only this transform's rounds (when transforms share a prefix).
    :param region_name: the AWS region.
    :param verify: verify SSL certificates (or a CA bundle path).
    :param botocore_config: botocore client configuration, as a dict (a proxy, retries, timeouts).
    """
    connection = AwsConnection(aws_conn_id, region_name, verify, botocore_config)
    return read_rounds(connection.s3(), history_s3_path, transform_id)
