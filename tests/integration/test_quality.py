"""Trust in the words, on real audio decoded in process: nothing from noise or music, and no
turn of a real voice left without words."""

from pathlib import Path

import pytest

from recognizer import quality
from recognizer.engines import EngineConfig, FasterWhisperEngine, read_audio
from recognizer.quality import RECOVERED
from recognizer.settings import RecognizerSettings
from recognizer.weights import whisper_base
from shared.jobs.options import JobOptions
from shared.transcripts import Transcript
from tests import media

pytestmark = pytest.mark.integration

TINY = EngineConfig(whisper_model="tiny.en", cpu_threads=1, beam_size=5)


@pytest.fixture(scope="module")
def tiny() -> FasterWhisperEngine:
    return FasterWhisperEngine(TINY)


@pytest.fixture(scope="module")
def engines(tiny: FasterWhisperEngine) -> dict[str, FasterWhisperEngine]:
    base = whisper_base(RecognizerSettings().models_dir / "whisper-base")
    return {
        "tiny.en": tiny,
        "base": FasterWhisperEngine(EngineConfig(str(base), cpu_threads=1, beam_size=5)),
    }


@pytest.mark.parametrize("sound", ["white", "pink", "music"])
def test_noise_and_music_give_no_words(
    sound: str, engines: dict[str, FasterWhisperEngine], tmp_path: Path
) -> None:
    wav = tmp_path / f"{sound}.wav"
    media.plucked_tones(wav) if sound == "music" else media.noise(wav, sound)
    for name, engine in engines.items():
        english = JobOptions(engine="faster-whisper", language="en")
        transcript = engine.transcribe(read_audio(wav), english)
        assert (name, transcript.text, transcript.segments) == (name, "", [])


@pytest.mark.parametrize(("model", "colour"), [("tiny.en", "white"), ("base", "brown")])
def test_without_the_speech_filter_whisper_invents_words_on_noise_and_they_are_dropped(
    model: str, colour: str, tmp_path: Path
) -> None:
    """The voice-activity filter hides it; with the filter off and the temperature held at 0
    (as a job may ask), Whisper invents a sentence on half a minute of noise, over and over,
    and the trust rules alone keep it out of the transcript."""
    name = (
        model
        if model == "tiny.en"
        else str(whisper_base(RecognizerSettings().models_dir / "whisper-base"))
    )
    engine = FasterWhisperEngine(EngineConfig(name, cpu_threads=1, beam_size=5, vad_filter=False))
    held = JobOptions(engine="faster-whisper", language="en", temperature=0.0)
    # Which stretch of noise sets Whisper off varies with the machine's int8 arithmetic.
    for seed in range(1, 5):
        wav = media.noise(tmp_path / f"noise-{seed}.wav", colour, 30, amplitude=1.0, seed=seed)
        audio = read_audio(wav)
        if len(media.word_list(engine._decoded(audio, held).text)) >= 10:
            break
    else:
        pytest.fail("Whisper invented no words on noise: this test's premise no longer holds")
    transcript = engine.transcribe(audio, held)
    assert (transcript.text, transcript.segments) == ("", [])


def words_within(transcript: Transcript, start: float, end: float) -> list[str]:
    return [
        word.word
        for segment in transcript.segments
        for word in segment.words
        if start - 0.3 <= (word.start + word.end) / 2 <= end + 0.3
    ]


@pytest.mark.timeout(300)  # two decodings of 50 s of audio, slow on a busy machine
def test_a_voice_answering_closely_is_not_left_without_words(
    tiny: FasterWhisperEngine, tmp_path: Path
) -> None:
    wav = tmp_path / "turns.wav"
    answers = media.cold_voice_answering(wav, gap_seconds=0.6)
    audio = read_audio(wav)
    engine = tiny
    # Decoded once, as Whisper does it, the first two answers get no words of their own (at
    # most the last words of the line before them, stretched over them).
    english = JobOptions(engine="faster-whisper", language="en")
    first_pass = engine._decoded(audio, english)
    assert [len(words_within(first_pass, *answer)) <= 2 for answer in answers[:2]] == [True, True]

    transcript = engine.transcribe(audio, english)
    recovered = transcript.model_copy(
        update={"segments": [s for s in transcript.segments if RECOVERED in s.flags]}
    )
    # Words of their own, decoded alone. In the first answer (a second of a voice with a cold
    # saying "sick corpus") tiny.en hears "sick for this" in a 30-s window, "thank you for this"
    # in the 20-s window it now gets: only "for this" is named.
    for start, end in answers[:2]:
        assert len(words_within(recovered, start, end)) >= 3
    assert {"for", "this"} <= set(media.word_list(" ".join(words_within(recovered, *answers[0]))))
    assert transcript.recovered_seconds >= 1.5
    # The other voice's lines are all there, once.
    assert media.word_list(transcript.text).count("dashwood") == 1
    assert "amiable" in media.words_of(transcript.text)


@pytest.mark.timeout(300)
def test_a_recording_in_two_languages_is_labelled_by_the_one_most_of_it_is_in(
    engines: dict[str, FasterWhisperEngine], tmp_path: Path
) -> None:
    english = media.speak(
        " ".join([media.PARAGRAPH, *media.STORY.split(". ")[:4]]), tmp_path / "en.wav"
    )
    german = media.speak(" ".join([media.GERMAN_STORY] * 3), tmp_path / "de.wav", voice="de")
    both = tmp_path / "both.wav"
    media.ffmpeg(
        "-i", str(english), "-i", str(german), "-filter_complex", "concat=n=2:v=0:a=1",
        "-ar", "16000", "-ac", "1", str(both),
    )  # fmt: skip
    audio = read_audio(both)
    engine = engines["base"]
    first_minute = audio.get_segment(0, 60_000)
    # Whisper's own detection reads the first 30 s: English.
    first = quality.majority_language(engine.language_votes(first_minute, 1))
    assert first is not None
    assert first.language == "en"
    heard = quality.majority_language(engine.language_votes(audio, quality.DETECTION_WINDOWS))
    assert heard is not None
    assert heard.language == "de"
    # A third of the speech is in English: less sure than of a recording in one language.
    assert 0.3 < heard.probability < first.probability
