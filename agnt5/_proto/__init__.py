"""Code generated from protos/agnt5/v1 by scripts/gen_protos.py: never edit by hand."""
