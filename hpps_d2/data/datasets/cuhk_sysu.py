"""PLACEHOLDER: being written (issue 2). Replace this whole file."""
SPLITS = []
