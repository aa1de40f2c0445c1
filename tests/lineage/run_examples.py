"""Run the example DAGs in ``dag.test()`` in a fresh interpreter, with OpenLineage on.

OpenLineage reads its configuration once a process (the transport, whether it is on), so the
lineage test runs this module in a process of its own with ``AIRFLOW__OPENLINEAGE__TRANSPORT``
set. Arguments: the emulator's endpoint, the transform id and a JSON file of the known truth.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import uuid
from pathlib import Path

import boto3

from airflow_provider_glue_labeling.emulator import Remote
from dev.demo import BUCKET, Labeler
from tests.helpers import ROOT


def load(name: str):
    spec = importlib.util.spec_from_file_location(
        f"{name}_{uuid.uuid4().hex}", ROOT / "example_dags" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.dag


def main(endpoint: str, transform_id: str, truth_file: str) -> int:
    glue, s3 = boto3.client("glue", endpoint_url=endpoint), boto3.client("s3", endpoint_url=endpoint)
    truth = json.loads(Path(truth_file).read_text())
    retraining = load("glue_findmatches_retraining")
    conf = {"transform_id": transform_id, "bucket": BUCKET, "min_f1": 0.5, "require_lower_bound": False}
    labeler = Labeler(glue, s3, transform_id, truth)
    labeler.start()
    try:
        states = [retraining.test(run_conf=conf).state]  # no labels: a labeling round
        states.append(retraining.test(run_conf=conf).state)  # evaluated: good enough
    finally:
        labeler.stopped.set()
    generation = load("glue_labeling_set_generation")
    Remote(endpoint).force_outcome(
        "FAILED", "Glue could not read the source table", "LABELING_SET_GENERATION"
    )
    failed = generation.test(
        run_conf={"transform_id": transform_id, "output_s3_path": f"s3://{BUCKET}/again/"}
    )
    states.append(failed.state)
    print(json.dumps(states))
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
