"""Fault injection: ingest killed, PostgreSQL stopped, Mosquitto restarted, while readings keep arriving."""
