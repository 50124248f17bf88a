"""Live transcription sessions (`/v1/realtime`), in the shape of OpenAI's Realtime API for
transcription sessions: the client events and their handlers (`protocol`), one session
(`session`), who may open one (`admission`), the texts coming back (`results`), the gateway's
set of sessions (`sessions`), and the audio side: pace, turns, interim text."""
