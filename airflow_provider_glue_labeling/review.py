"""Review sets: the match groups a FindMatches job is unsure of, as a labeling set people label.

AWS's advice for match confidence scores ("Estimating the quality of matches using match
confidence scores", AWS Glue developer guide, https://docs.aws.amazon.com/glue/latest/dg/match-scoring.html):
merge the groups the model is highly confident of, have a human review the uncertain ones,
reject the unlikely ones, and adjust the training data where a score proves wrong.
:func:`build_review_set` turns the uncertain groups of a matching job's output into labeling
sets in Glue's format, each group with the records nearest to it, so that people labeling it
(the labeling page, :class:`~.labeling.GlueMLLabelingOperator`) split a group or join it to
another, and the import (:class:`~.operators.GlueMLImportLabelsOperator`) adds what they said to
the training data. :class:`GlueMLReviewSetOperator` runs it in a DAG; the builder itself, pure
functions over the job's rows, is :mod:`~.labels.review_sets`. Importable from
:mod:`~.operators` as every operator is.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowSkipException

from airflow_provider_glue_labeling.exceptions import GlueMLError, GlueMLInputError
from airflow_provider_glue_labeling.hooks import AwsConnection, GlueMLHook
from airflow_provider_glue_labeling.labels.files import as_prefix
from airflow_provider_glue_labeling.labels.review_sets import (
    MATCH_ID,
    MAX_SET_ROWS,
    MAX_SETS,
    SCORE,
    SET_SIZE,
    build_review_set,
    matches_problem,
    read_matches,
)
from airflow_provider_glue_labeling.lineage import GlueMLLineageMixin, Ref
from airflow_provider_glue_labeling.validation import (
    check_fraction,
    check_positive,
    check_s3_uri,
    check_transform_id,
    rendered_int,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class GlueMLReviewSetOperator(GlueMLLineageMixin, AwsBaseOperator[GlueMLHook]):
    """Build a review set from a FindMatches job's output: the groups it is unsure of, to label.

    Reads the matching job's CSV files at ``matches_s3_path`` (run with
    ``computeMatchConfidenceScores=True``: each record with its ``match_id`` and
    ``match_confidence_score``), picks the groups whose score lies in the band and writes them,
    each with its nearest records, as a labeling set (:func:`build_review_set`) to one file under
    ``review_set_s3_path``. Returns that file's path (XCom ``return_value``), which
    :class:`~.labeling.GlueMLLabelingOperator` takes as its ``labeling_set_s3_path`` and the
    labeling page shows as it shows a generated labeling set; the labels then go to
    :class:`~.operators.GlueMLImportLabelsOperator` as any labels do. The same input gives the
    same file, so a retry writes the same object again.

    With fewer than ``min_groups`` groups to review, nothing is written and the task is skipped
    (``AirflowSkipException``, with a log line): the labeling and import after it skip too.

    Parameters are checked before any AWS call; the matching output's columns are checked against
    the transform's schema (``GetMLTransform``) before anything is written: a ``match_id`` and a
    ``match_confidence_score`` column, and every source column of the transform.

    :param transform_id: the FindMatches transform the job applied. (templated)
    :param matches_s3_path: the matching job's output, ``s3://bucket/prefix/`` (its ``--output_path``)
        or one file. (templated)
    :param review_set_s3_path: the prefix to write the review set under, as a labeling-set
        generation's ``output_s3_path``; the file is ``review-<12 hex>.csv``. (templated)
    :param min_confidence: the band's low end, 0 to 1 (default 0.4). (templated)
    :param max_confidence: the band's high end, 0 to 1, above ``min_confidence`` (default 0.8). (templated)
    :param max_sets: at most this many sets, one group each (default 10: as a generated labeling
        set, about 10 sets of about 10 records). (templated)
    :param set_size: the rows a set fills up to with the nearest groups (default 10; 2 to 30,
        the sizes Glue's guide calls fine). (templated)
    :param min_groups: with fewer groups to review, skip: a positive whole number (default 1). (templated)
    :param aws_conn_id: the Airflow AWS connection. (templated)
    :param region_name: the AWS region. (templated)
    :param verify: verify SSL certificates (or a CA bundle path). (templated)
    :param botocore_config: botocore client configuration, as a dict. (templated)
    """

    aws_hook_class = GlueMLHook
    template_fields: Sequence[str] = aws_template_fields(
        "transform_id",
        "matches_s3_path",
        "review_set_s3_path",
        "min_confidence",
        "max_confidence",
        "max_sets",
        "set_size",
        "min_groups",
    )
    ui_color = "#ede4ff"

    def __init__(
        self,
        *,
        transform_id: str,
        matches_s3_path: str,
        review_set_s3_path: str,
        min_confidence: float = 0.4,
        max_confidence: float = 0.8,
        max_sets: int = MAX_SETS,
        set_size: int = SET_SIZE,
        min_groups: int = 1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.transform_id, self.matches_s3_path = transform_id, matches_s3_path
        self.review_set_s3_path = review_set_s3_path
        self.min_confidence, self.max_confidence = min_confidence, max_confidence
        self.max_sets, self.set_size, self.min_groups = max_sets, set_size, min_groups
        self.written: str | None = None

    def lineage_inputs(self) -> list[Ref]:
        return [Ref("s3", self.matches_s3_path)]

    def lineage_outputs(self) -> list[Ref]:
        return [Ref("s3", self.written or self.review_set_s3_path)]

    def validate(self) -> dict[str, Any]:
        """The rendered parameters, checked (text renders read as numbers); no AWS call."""
        check_transform_id(self.transform_id)
        check_s3_uri("matches_s3_path", self.matches_s3_path)
        check_s3_uri("review_set_s3_path", self.review_set_s3_path)
        low = check_fraction("min_confidence", self.min_confidence)
        high = check_fraction("max_confidence", self.max_confidence)
        if low is None or high is None:
            name = "min_confidence" if low is None else "max_confidence"
            raise GlueMLInputError(name, None, "expected a number from 0 to 1")
        if low >= high:
            raise GlueMLInputError(
                "max_confidence",
                self.max_confidence,
                f"expected a number above min_confidence={self.min_confidence!r}: the band is "
                "min_confidence <= score <= max_confidence",
            )
        set_size = int(check_positive("set_size", rendered_int(self.set_size), int))
        if not 2 <= set_size <= MAX_SET_ROWS:
            raise GlueMLInputError(
                "set_size",
                self.set_size,
                f"expected 2 to {MAX_SET_ROWS} rows: a set teaches with 2 or more, and Glue's guide "
                "calls 2-30 fine (over 50 may cause poor results or system failure)",
            )
        max_sets = int(check_positive("max_sets", rendered_int(self.max_sets), int))
        min_groups = int(check_positive("min_groups", rendered_int(self.min_groups), int))
        if min_groups > max_sets:
            raise GlueMLInputError(
                "min_groups",
                self.min_groups,
                f"expected at most max_sets ({max_sets}): a review set holds at most max_sets groups, "
                "so the task would always be skipped",
            )
        self.hook.require_region()
        return {
            "min_confidence": low,
            "max_confidence": high,
            "max_sets": max_sets,
            "set_size": set_size,
            "min_groups": min_groups,
        }

    def execute(self, context: Context) -> str:
        band = self.validate()
        min_groups = band.pop("min_groups")
        s3 = AwsConnection.of(self).s3()
        files = s3.read_files(self.matches_s3_path, "matches_s3_path")
        try:
            header, rows = read_matches(files)
        except ValueError as error:
            raise GlueMLInputError("matches_s3_path", self.matches_s3_path, str(error)) from None
        if not rows:
            raise GlueMLError(
                f"No matching output at matches_s3_path {self.matches_s3_path}: no CSV file with records "
                "(expected the FindMatches job's --output_path, after its run succeeded)",
                transform_id=self.transform_id,
            )
        transform = self.hook.get_transform(self.transform_id)
        schema = [c["Name"] for c in transform.get("Schema") or []] or [
            c for c in header if c not in (MATCH_ID, SCORE)
        ]
        primary_key = (
            (transform.get("Parameters") or {}).get("FindMatchesParameters", {}).get("PrimaryKeyColumnName")
        )
        problem = matches_problem(header, [*schema, *([primary_key] if primary_key else [])])
        if problem:
            raise GlueMLInputError(
                "matches_s3_path", self.matches_s3_path, f"{problem} (transform {self.transform_id})"
            )
        try:
            review = build_review_set(rows, schema, primary_key, **band)
        except ValueError as error:
            raise GlueMLInputError("matches_s3_path", self.matches_s3_path, str(error)) from None
        self.log.info(
            "%d of %d match groups have a score from %s to %s; %d to review%s",
            review.in_band,
            len({row[MATCH_ID] for row in rows}),
            band["min_confidence"],
            band["max_confidence"],
            len(review.sets),
            f" ({review.too_big} of {MAX_SET_ROWS} records or more left out)" if review.too_big else "",
        )
        if len(review.sets) < min_groups:
            self.log.info(
                "Nothing to review: %d group(s) to review, fewer than min_groups=%d; skipping",
                len(review.sets),
                min_groups,
            )
            raise AirflowSkipException(f"{len(review.sets)} group(s) to review, min_groups={min_groups}")
        bucket, key = check_s3_uri("review_set_s3_path", self.review_set_s3_path)
        path = f"{as_prefix(key)}{review.name}"
        s3.write(bucket, path, review.data)
        self.written = f"s3://{bucket}/{path}"
        for reviewed in review.sets:
            self.log.info(
                "Set %s: group %s (score %s, %d records) with %d nearby record(s)",
                reviewed.set_id,
                reviewed.match_id,
                reviewed.score,
                reviewed.records,
                reviewed.neighbours,
            )
        self.log.info(
            "Review set of %d sets, %d records written to %s",
            len(review.sets),
            sum(r.records + r.neighbours for r in review.sets),
            self.written,
        )
        return self.written
