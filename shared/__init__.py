"""Pieces every service uses: settings, events, the broker transport and the job store."""
