"""What people look at: pages served by the API, and Grafana provisioning."""
