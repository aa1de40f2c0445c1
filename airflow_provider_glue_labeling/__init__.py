"""Apache Airflow provider for AWS Glue FindMatches teaching: labeling sets, labels, evaluation."""

from __future__ import annotations

from typing import Any

__version__ = "0.2.0.dev0"

_MODULE = "airflow_provider_glue_labeling"


def get_provider_info() -> dict[str, Any]:
    """Describe the provider to Airflow (the ``apache_airflow_provider`` entry point)."""
    integration = "AWS Glue FindMatches"
    return {
        "package-name": "airflow-provider-glue-labeling",
        "name": "AWS Glue FindMatches labeling",
        "description": "Teach AWS Glue FindMatches ML transforms from Airflow: labeling sets, "
        "label import/export, evaluation with a quality gate, and an offline emulator.",
        "versions": [__version__],
        "integrations": [
            {
                "integration-name": integration,
                "external-doc-url": "https://docs.aws.amazon.com/glue/latest/dg/machine-learning.html",
                "tags": ["aws"],
            }
        ],
        "operators": [{"integration-name": integration, "python-modules": [f"{_MODULE}.operators"]}],
        "sensors": [{"integration-name": integration, "python-modules": [f"{_MODULE}.sensors"]}],
        "hooks": [{"integration-name": integration, "python-modules": [f"{_MODULE}.hooks"]}],
        "triggers": [{"integration-name": integration, "python-modules": [f"{_MODULE}.triggers"]}],
        "extra-links": [f"{_MODULE}.links.GlueMLTransformLink"],
        "config": {
            "glue_labeling": {
                "description": "Settings of the AWS Glue FindMatches labeling provider.",
                "options": {
                    "poll_seconds": {
                        "description": "Seconds between looks at a Glue ML task run or a labels file, for "
                        "the operators' waiter_delay and the sensors' and labeling task's poke_interval "
                        "when a task gives none. Glue runs take minutes and people days: 60 suits both.",
                        "version_added": "0.2.0",
                        "type": "float",
                        "example": "30",
                        "default": "60",
                    },
                    "answer_settle_seconds": {
                        "description": "Seconds a labeling task's human-in-the-loop request stands before "
                        "the labeling page's submit answers it (the labels file is written at once). An "
                        "answer that resumes a task before the scheduler has seen its parked process end "
                        "fails the task on Airflow 3.3 (apache/airflow#71580).",
                        "version_added": "0.2.0",
                        "type": "float",
                        "example": "30",
                        "default": "15",
                    },
                },
            }
        },
        # The labeling page in the Airflow UI (Airflow 3.1+).
        "plugins": [{"name": "glue_labeling", "plugin-class": f"{_MODULE}.plugins.GlueLabelingPlugin"}],
    }
