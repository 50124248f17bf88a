"""The HTTP face of the service: accepts uploads, answers job status and transcripts."""
