"""Slack: Block Kit messages that link back to Signoff, and buttons that decide through the
same service as the web (docs/notifications.md)."""
