"""Local state: the mapping journal, instance and registration records, and the run lock."""
