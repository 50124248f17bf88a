# One image for all four services; compose picks the service with its command.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HUB_OFFLINE=1 \
    STT_MEDIA_DIR=/data/media \
    STT_MODELS_DIR=/app/models

RUN apt-get update \
    && apt-get install -y --no-install-recommends ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --create-home --uid 10001 stt \
    && mkdir -p /data/media \
    && chown stt:stt /data/media

WORKDIR /app
COPY pyproject.toml README.md ./
COPY shared ./shared
COPY gateway ./gateway
COPY transcoder ./transcoder
COPY recognizer ./recognizer
COPY janitor ./janitor
COPY cli ./cli
# torch (needed once, to convert the speaker model to ONNX) from PyTorch's CPU index first: from
# PyPI the same version is a CUDA build of several GB.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu \
    && pip install . \
    && python -m recognizer.weights /app/models/whisper-base \
    && python -m recognizer.speaker_model /app/models/campplus

USER stt
EXPOSE 8000 9100
# Exec form, so SIGTERM reaches Python and the service drains before it exits.
CMD ["python", "-m", "gateway"]
