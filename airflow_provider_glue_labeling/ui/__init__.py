"""The labeling page (Airflow 3.1+): a FastAPI app of routes (``app``) over a service that knows
labeling tasks and S3 and nothing of HTTP (``service``), and the page itself (``static``)."""
