"""The janitor: deletes a job's media once the cleanup delay after its end has passed, and
looks after jobs nobody else will: parked messages, deadlines, unannounced ends, held jobs."""
