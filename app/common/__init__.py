"""What several tabs share: the one worker-thread mechanism, background jobs, the ModelSource the tabs read their
model from, and the token-by-token text view."""
