"""A request's discussion: Markdown rendering, the thread as read, and its pages.
Writes are in approvals/services/discussion.py."""
