"""Placewatch composition root: settings, command line, embedded services."""
