"""`lorebase eval`: retrieval and answer quality on BEIR-format datasets, measured by driving
the product through its services (a temporary user and project, ingestion, queries)."""
