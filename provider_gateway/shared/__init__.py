"""State shared by replicas: listing cache, single-flight, locks, one-time OAuth states.

Redis when configured (one node over TCP or TLS, through Sentinel, or a Cluster),
in-process otherwise; when Redis fails, every operation falls back to the in-process backend
(degrade, don't fail) until Redis answers again.
"""
