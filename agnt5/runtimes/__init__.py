"""Runtimes: how a Worker serves its components (standalone gRPC stream, or ASGI)."""
