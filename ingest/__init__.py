"""MQTT in: subscriptions, one decoder per device format, batching, acks, the dead-letter path."""
