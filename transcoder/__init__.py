"""Turns uploaded media into 16 kHz mono 16-bit WAV for the recognizer."""
