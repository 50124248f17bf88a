"""The `stt` command-line tool."""
