"""The labeling page (Airflow 3.1+): a FastAPI app of routes (``app``) that take and answer the
pydantic models of ``models``, over a service that knows labeling tasks and S3 and nothing of HTTP
(``service``) and finds them in Airflow's DB (``tasks``), and the page itself (``static``)."""
