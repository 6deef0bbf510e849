"""Automated steps: the actions a definition names, run after commit with retries."""
