"""What made a transcript: the model an engine was loaded from (found once per slot process as
its engines load, by the engine's own loader, `recognizer.engines.describe_model`: the weights'
SHA-256 read from disk and the software versions; a model that ships in a package pinned to one
version must have the weights of that version, or the engine does not start), with the decoding
settings of one job."""

from recognizer.engines import EngineConfig, describe_model
from shared.engines import ENGINE_SPECS
from shared.jobs.options import JobOptions
from shared.provenance import Decoding, ModelProvenance, Provenance


def provenance(model: ModelProvenance, config: EngineConfig, options: JobOptions) -> Provenance:
    """`model`'s provenance with the decoding settings of one job."""
    spec = ENGINE_SPECS[model.engine]
    local, whisper = spec.local_whisper, spec.whisper_steering
    decoding = Decoding(
        task=options.task,
        language=options.language,
        beam_size=config.beam_size if local else None,
        vad_filter=config.vad_filter if local else None,
        word_timestamps=config.word_timestamps if local else None,
        batch_size=config.batch_size if local else None,
        temperature=options.temperature if whisper else None,
        prompt=options.prompt if whisper else None,
        hotwords=list(options.hotwords) if whisper else [],
    )
    return Provenance(**model.model_dump(), decoding=decoding)


__all__ = ["describe_model", "provenance"]
