"""State shared by replicas: listing cache, single-flight, locks, one-time OAuth states.

Redis when GATEWAY_REDIS_URL is set, in-process otherwise; when Redis fails, every operation
falls back to the in-process backend (degrade, don't fail) until Redis answers again.
"""
