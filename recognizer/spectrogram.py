"""Whisper's log-mel spectrogram framed in blocks, in a tenth of the memory faster-whisper takes.

faster-whisper computes the spectrogram of everything it decodes in one go, and its steps (the
framed samples, their FFT, the power and the mel bands) each hold the whole stretch at once:
about 1 MB per second of audio, 59 MB for a 60-s piece and 2.2 GB for a 37-minute recording
decoded whole. Its frames are taken a block at a time instead, so only the power spectrum
(201 bins of float32, 80 kB per second) and the result (80 mel bands, 32 kB per second) grow
with the audio. The mel bands and everything after them are computed over the whole stretch at
once, as faster-whisper does, so the spectrogram is the same to the last bit.
"""

import numpy as np
from faster_whisper.feature_extractor import FeatureExtractor

BLOCK_FRAMES = 1000
"""10 s of 10-ms frames per block."""


class BlockwiseFeatureExtractor(FeatureExtractor):  # type: ignore[misc]  # faster-whisper is untyped
    def __call__(
        self, waveform: np.ndarray, padding: int = 160, chunk_length: int | None = None
    ) -> np.ndarray:
        samples = np.asarray(waveform, dtype=np.float32)
        frames = (len(samples) + padding) // self.hop_length
        if frames <= BLOCK_FRAMES:
            whole: np.ndarray = super().__call__(samples, padding, chunk_length)
            return whole
        if chunk_length is not None:  # as faster-whisper's own extractor takes it
            self.n_samples = chunk_length * self.sampling_rate
            self.nb_max_frames = self.n_samples // self.hop_length
        window = np.hanning(self.n_fft + 1)[:-1].astype(np.float32)
        padded = self._centred(samples, padding)
        power = np.empty((self.n_fft // 2 + 1, frames), dtype=np.float32, order="F")
        for first in range(0, frames, BLOCK_FRAMES):
            last = min(first + BLOCK_FRAMES, frames)
            # Frame t starts at sample t * hop_length of the padded samples.
            start, stop = first * self.hop_length, (last - 1) * self.hop_length + self.n_fft
            spectrum = self.stft(
                stretch(padded, start, stop), self.n_fft, self.hop_length, window=window,
                center=False, return_complex=True,
            ).astype(np.complex64)  # fmt: skip
            power[:, first:last] = np.abs(spectrum) ** 2
        # One product over every frame, as faster-whisper takes it: in blocks, BLAS would add
        # the mel bands in another order, and Whisper's beam can turn on the last bit.
        log_mel: np.ndarray = self.mel_filters @ power
        del power
        np.clip(log_mel, 1e-10, None, out=log_mel)
        np.log10(log_mel, out=log_mel)
        np.maximum(log_mel, log_mel.max() - 8.0, out=log_mel)
        log_mel += 4.0
        log_mel /= 4.0
        return log_mel

    def _centred(self, samples: np.ndarray, padding: int) -> list[np.ndarray]:
        """The samples as faster-whisper's centred STFT sees them, in parts not joined (which
        would copy the whole recording): `padding` zeros appended, then the ends reflected by
        half a frame."""
        half = self.n_fft // 2
        zeros = np.zeros(padding, np.float32)
        tail = np.concatenate([samples[-(half + 1) :], zeros])
        return [samples[half:0:-1], samples, zeros, tail[-2 : -half - 2 : -1]]


def stretch(parts: list[np.ndarray], start: int, stop: int) -> np.ndarray:
    """Samples `start` to `stop` of `parts` laid end to end."""
    pieces, offset = [], 0
    for part in parts:
        a, b = max(start, offset), min(stop, offset + len(part))
        if a < b:
            pieces.append(part[a - offset : b - offset])
        offset += len(part)
    return np.concatenate(pieces)
