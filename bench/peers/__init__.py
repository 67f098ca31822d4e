"""The pipelines bench.ingest measures Placewatch against, on the same broker, stream and PostgreSQL."""
