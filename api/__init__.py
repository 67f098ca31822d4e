"""FastAPI: one router per audience or resource, dependencies in deps.py."""
