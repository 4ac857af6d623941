"""notify_svc: the notification service (event consumer, email, notification log)."""
