"""Shared runtime of every taskmgr service: settings, logging, database, gRPC, auth, events."""
