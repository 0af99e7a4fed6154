"""The gate in front of a flash sale: the waiting room and its admissions."""
