"""Deletes a job's files once the cleanup delay has passed after it finished."""
