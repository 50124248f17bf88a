"""Jobs: what one is (models), when it expires (deadline), and how it is kept in MongoDB (store,
with its parts for the job list, idempotency keys and the pace of recognition)."""
