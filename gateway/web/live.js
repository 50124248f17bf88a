// The "Live" tab: the microphone streamed to a live session (/v1/realtime). Each utterance's
// words show in grey as they are heard (its deltas) and in black once final (its completed
// text). The API key travels as a WebSocket subprotocol, the way OpenAI's browser clients send
// it (a browser cannot set headers on a WebSocket).

import { savedKey } from "./api.js";

const RATE = 24000;
// After Stop, the last utterance's text is waited for at most this long.
const LAST_TEXT_MS = 60000;
const $ = (selector) => document.querySelector(selector);

let socket = null;
let audio = null;
let microphone = null;
let hearing = null; // the item whose speech is under way, not yet committed
const waiting = new Set(); // items committed whose text has not come
let settled = null; // called once nothing is under way or waiting, after Stop

function showTab(live) {
  $("#tab-files").setAttribute("aria-selected", String(!live));
  $("#tab-live").setAttribute("aria-selected", String(live));
  $("#upload-form").hidden = live;
  $("#live-panel").hidden = !live;
}

function say(words, kind = "") {
  const status = $("#live-status");
  status.textContent = words;
  status.className = `status ${kind}`;
}

function line(itemId) {
  let item = document.getElementById(itemId);
  if (!item) {
    item = document.createElement("li");
    item.id = itemId;
    item.className = "hearing";
    $("#live-lines").append(item);
  }
  return item;
}

function follow() {
  const lines = $("#live-lines");
  lines.scrollTop = lines.scrollHeight;
}

function settle() {
  if (settled && !hearing && waiting.size === 0) settled();
}

function toBase64(buffer) {
  const bytes = new Uint8Array(buffer);
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(binary);
}

function onEvent(event) {
  switch (event.type) {
    case "session.created":
      $("#live-job").textContent = `Job ${event.session.id}`;
      break;
    case "input_audio_buffer.speech_started":
      hearing = event.item_id;
      line(event.item_id).textContent = "…";
      follow();
      if (!settled) say("Hearing speech");
      break;
    case "input_audio_buffer.speech_stopped":
      if (!settled) say("Transcribing");
      break;
    case "input_audio_buffer.committed":
      if (hearing === event.item_id) hearing = null;
      waiting.add(event.item_id);
      break;
    case "conversation.item.input_audio_transcription.delta": {
      const item = line(event.item_id);
      if (item.className === "hearing") {
        item.dataset.heard = (item.dataset.heard || "") + event.delta;
        item.textContent = item.dataset.heard;
        follow();
      }
      break;
    }
    case "conversation.item.input_audio_transcription.completed": {
      const item = line(event.item_id);
      item.textContent = event.transcript || "(nothing heard)";
      item.className = "";
      follow();
      waiting.delete(event.item_id);
      if (!settled) say("Listening");
      settle();
      break;
    }
    case "conversation.item.input_audio_transcription.failed":
      line(event.item_id).textContent = `(not transcribed: ${event.error.message})`;
      line(event.item_id).className = "";
      waiting.delete(event.item_id);
      settle();
      break;
    case "error":
      if (event.error.code === "input_audio_buffer_commit_empty") {
        hearing = null; // nothing was left to commit
        settle();
        break;
      }
      $("#live-problem").textContent = event.error.message;
      $("#live-problem").hidden = false;
      break;
    default:
      break;
  }
}

async function startLive() {
  $("#live-problem").hidden = true;
  $("#live-lines").replaceChildren();
  hearing = null;
  waiting.clear();
  settled = null;
  try {
    microphone = await navigator.mediaDevices.getUserMedia({ audio: { channelCount: 1 } });
  } catch (error) {
    $("#live-problem").textContent = `The microphone cannot be used: ${error.message}`;
    $("#live-problem").hidden = false;
    return;
  }
  audio = new AudioContext({ sampleRate: RATE });
  await audio.audioWorklet.addModule("/assets/web/pcm-worklet.js");
  const source = audio.createMediaStreamSource(microphone);
  const blocks = new AudioWorkletNode(audio, "pcm-blocks");
  source.connect(blocks);

  const key = savedKey();
  const protocols = key ? ["realtime", `openai-insecure-api-key.${key}`] : ["realtime"];
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  socket = new WebSocket(`${scheme}://${location.host}/v1/realtime`, protocols);
  socket.addEventListener("open", () => {
    const language = $("#language").value;
    const engine = $("#engine").value;
    socket.send(JSON.stringify({
      type: "session.update",
      session: {
        type: "transcription",
        audio: {
          input: {
            format: { type: "audio/pcm", rate: RATE },
            transcription: { model: engine, language },
            turn_detection: { type: "server_vad" },
          },
        },
      },
    }));
    blocks.port.onmessage = ({ data }) => {
      if (socket?.readyState === WebSocket.OPEN) {
        socket.send(JSON.stringify({ type: "input_audio_buffer.append", audio: toBase64(data) }));
      }
    };
    say("Listening");
  });
  socket.addEventListener("message", (message) => onEvent(JSON.parse(message.data)));
  socket.addEventListener("close", (closed) => {
    if (closed.code !== 1000 && closed.reason) say(`Ended: ${closed.reason}`, "failed");
    stopAudio();
    settled?.();
  });
  $("#live-start").hidden = true;
  $("#live-stop").hidden = false;
}

function stopAudio() {
  microphone?.getTracks().forEach((track) => track.stop());
  audio?.close();
  microphone = audio = null;
  $("#live-start").hidden = false;
  $("#live-stop").hidden = true;
}

// Stop: the microphone goes at once; what was heard since the last pause is committed, and the
// session ends once the text of every utterance has come.
async function stopLive() {
  stopAudio();
  const open = socket;
  socket = null;
  if (open?.readyState === WebSocket.OPEN) {
    $("#live-stop").hidden = true;
    say("Finishing: waiting for the last words", "");
    const done = new Promise((resolve) => { settled = resolve; });
    if (hearing) open.send(JSON.stringify({ type: "input_audio_buffer.commit" }));
    settle();
    await Promise.race([done, new Promise((resolve) => setTimeout(resolve, LAST_TEXT_MS))]);
    open.close(1000);
  }
  settled = null;
  say("Stopped: the transcript is kept as a job (see Recent jobs)", "done");
}

$("#tab-files").addEventListener("click", () => showTab(false));
$("#tab-live").addEventListener("click", () => showTab(true));
$("#live-start").addEventListener("click", () => startLive().catch((error) => {
  $("#live-problem").textContent = error.message;
  $("#live-problem").hidden = false;
}));
$("#live-stop").addEventListener("click", stopLive);
