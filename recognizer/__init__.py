"""Turns 16 kHz mono WAV into text with SpeechRecognition's engines."""
