"""Throwaway Redis Sentinel and Redis Cluster sets for the bus tests: now in harness/redis.py (one
Redis launcher for every test); these names stay importable from here."""

from harness.redis import (REDIS, REDIS_CLI, SENTINEL, Cluster, SentinelSet, Server, numsub,  # noqa: F401
                           read_reply as _read, resp_command, shard_numsub, wait_until)

__all__ = ["REDIS", "REDIS_CLI", "SENTINEL", "Cluster", "SentinelSet", "Server", "numsub", "_read", "resp_command",
           "shard_numsub", "wait_until"]
