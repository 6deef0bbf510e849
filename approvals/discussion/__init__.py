"""A request's discussion (issue 12): Markdown rendering, the thread as read, and its pages.
Writes are in approvals/services/discussion.py."""
