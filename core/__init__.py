"""Placewatch domain: value types, units, and the rules. Pure: no I/O, no clock, no frameworks."""
