"""The REST edge of taskmgr: routes, JSON and OpenAPI generated from the proto contracts."""
