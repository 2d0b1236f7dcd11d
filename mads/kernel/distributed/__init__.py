"""Distributed mode: the same MAD modules in several processes and machines, over Redis Streams.

Each MAD has an inbox stream with one consumer group; every process hosting the MAD is a
consumer of it, acks an entry only once its handler finished and its state committed, and
claims what a dead process left pending. Conversations and the directory of MADs and
processes live in Redis; every process streams its events for one recorder to journal.
"""
from __future__ import annotations

from .address import BusAddress, parse_bus

__all__ = ["BusAddress", "parse_bus"]
