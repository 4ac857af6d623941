"""task_svc: tasks, their visibility and permissions, assignment, and their events."""
