"""The REST API for integrators (/api/v1/): thin views over approvals.services."""
