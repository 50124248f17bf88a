"""Real test media, made with espeak-ng and ffmpeg."""

import subprocess
from pathlib import Path

SENTENCE = "Please send the quarterly report to the finance team before Friday."
# About 40 seconds of varied speech; repeating one sentence would trip Whisper's fallback to
# sampling (its output compresses too well), making the transcript vary from run to run.
PARAGRAPH = " ".join(
    [
        SENTENCE,
        "The weather today is sunny and warm, with a light breeze from the west.",
        "Our new office opens next month near the central railway station.",
        "Remember to water the plants and feed the cat while I am away.",
        "The library closes early on Sundays, so return your books on Saturday.",
        "We measured the river after the storm and found it had risen two metres.",
        "Dinner will be served at seven, followed by music in the garden.",
    ]
)
# Words tiny.en recognizes in espeak-ng's voice run after run.
EXPECTED_WORDS = ("send", "quarterly", "report", "finance", "friday")


GERMAN_SENTENCE = "Guten Morgen. Bitte schicken Sie den Bericht bis Freitag an die Buchhaltung."
GERMAN_WORDS = ("guten", "morgen", "bitte", "schicken", "bericht")


def speak(text: str, wav: Path, voice: str = "en-us") -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav), text], check=True)
    return wav


def ffmpeg(*arguments: str) -> None:
    subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *arguments], check=True
    )


def to_mp3(wav: Path, mp3: Path) -> Path:
    ffmpeg("-i", str(wav), "-c:a", "libmp3lame", "-q:a", "4", str(mp3))
    return mp3


def to_mp4(wav: Path, mp4: Path) -> Path:
    ffmpeg(
        "-f", "lavfi", "-i", "color=c=black:s=160x120:r=10", "-i", str(wav), "-shortest",
        "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", str(mp4),
    )  # fmt: skip
    return mp4


def video_without_audio(mp4: Path, seconds: float = 1) -> Path:
    ffmpeg(
        "-f", "lavfi", "-i", "color=c=black:s=160x120:r=10", "-t", str(seconds),
        "-c:v", "libx264", "-pix_fmt", "yuv420p", str(mp4),
    )  # fmt: skip
    return mp4


def silence(wav: Path, seconds: float) -> Path:
    ffmpeg("-f", "lavfi", "-i", "anullsrc=r=16000:cl=mono", "-t", str(seconds), str(wav))
    return wav


def words_of(text: str) -> set[str]:
    return {word.strip(".,!?;:'\"").lower() for word in text.split()}
