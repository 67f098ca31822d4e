"""PostgreSQL/TimescaleDB: migrations, the COPY writer and the queries. SQL lives here and nowhere else."""
