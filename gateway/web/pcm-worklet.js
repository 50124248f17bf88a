// Runs on the audio thread: hands the microphone's samples to the page in blocks of 100 ms,
// as 16-bit PCM at the AudioContext's rate (24 kHz, as the live session expects).

class PcmBlocks extends AudioWorkletProcessor {
  constructor() {
    super();
    this.block = new Int16Array(Math.round(sampleRate / 10));
    this.filled = 0;
  }

  process(inputs) {
    const channel = inputs[0]?.[0];
    if (!channel) return true;
    for (const sample of channel) {
      const clipped = Math.max(-1, Math.min(1, sample));
      this.block[this.filled++] = clipped < 0 ? clipped * 0x8000 : clipped * 0x7fff;
      if (this.filled === this.block.length) {
        this.port.postMessage(this.block.buffer.slice(0));
        this.filled = 0;
      }
    }
    return true;
  }
}

registerProcessor("pcm-blocks", PcmBlocks);
