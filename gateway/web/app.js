// The web page: pick or drop recordings, follow each as it is transcribed, play it from the
// sentence clicked, and keep the transcript. Nothing is built: this file runs as it is.

import { ApiError, Unauthorized, call, jobEvents, saveKey, savedKey } from "./api.js";

const STATUS_WORDS = {
  queued: "Waiting",
  transcoding: "Converting",
  recognizing: "Transcribing",
  done: "Done",
  failed: "Failed",
};

const $ = (selector) => document.querySelector(selector);
let engines = [];
let transcriptFormats = [];

function clock(seconds) {
  const whole = Math.floor(seconds);
  const h = Math.floor(whole / 3600);
  const m = Math.floor((whole % 3600) / 60);
  const s = String(whole % 60).padStart(2, "0");
  return h ? `${h}:${String(m).padStart(2, "0")}:${s}` : `${m}:${s}`;
}

function showProblem(error) {
  if (error instanceof Unauthorized) {
    askForKey(error.message);
    return;
  }
  const problem = $("#service-problem");
  problem.textContent = error.message;
  problem.hidden = false;
}

function askForKey(why) {
  $("#key-why").textContent = `${why} It is kept in this browser only.`;
  $("#key-form").hidden = false;
  $("#change-key").hidden = false;
  $("#key").focus();
}

// Engines and their languages, as the service offers them.
async function loadEngines() {
  const response = await call("/v1/models");
  engines = (await response.json()).data;
  const engineSelect = $("#engine");
  engineSelect.replaceChildren(
    ...engines.map((engine) => new Option(engineLabel(engine), engine.id, false, engine.default === true)),
  );
  fillLanguages();
  $("#service-problem").hidden = true;
}

// The formats a transcript downloads in, as the API's own description lists them.
async function loadFormats() {
  const api = await (await call("/openapi.json")).json();
  const route = api.paths["/v1/jobs/{job_id}/transcript"].get;
  transcriptFormats = route.parameters.find((parameter) => parameter.name === "format").schema.enum;
}

// "whisper-base — Whisper base: the accurate one, …": the id alone does not tell engines apart.
function engineLabel(engine) {
  return engine.description ? `${engine.id} — ${engine.description}` : engine.id;
}

function fillLanguages() {
  const engine = engines.find((each) => each.id === $("#engine").value);
  const languages = engine ? engine.languages : [];
  const preferred = languages.includes("en") ? "en" : languages.includes("auto") ? "auto" : languages[0];
  $("#language").replaceChildren(
    ...languages.map((code) => new Option(code === "auto" ? "auto (detect)" : code, code, false, code === preferred)),
  );
  // Only engines that time their words, with a recognizer that has the speaker model, label speakers.
  const speakers = $("#speakers");
  speakers.disabled = !(engine && engine.labels_speakers);
  if (speakers.disabled) speakers.checked = false;
  $("#speakers-hint").textContent = speakers.disabled
    ? "not offered for this engine here"
    : "S1, S2, … in the transcript, by who speaks";
}

// The name a recording given by its address goes by: the last part of its path, or its host.
function nameInUrl(address) {
  const url = new URL(address);
  return decodeURIComponent(url.pathname.split("/").pop()) || url.host;
}

// One card per recording (a file, or the address of one): status, progress, the transcript as it
// grows, then the player and downloads.
class Card {
  constructor(source) {
    this.file = typeof source === "string" ? null : source;
    this.url = typeof source === "string" ? source : null;
    this.name = this.file ? this.file.name : nameInUrl(this.url);
    this.element = $("#card").content.firstElementChild.cloneNode(true);
    this.element.querySelector(".name").textContent = this.name;
    this.status = this.element.querySelector(".status");
    this.progress = this.element.querySelector("progress");
    this.problem = this.element.querySelector(".problem");
    this.segments = this.element.querySelector(".segments");
    this.heard = new Map();
    $("#work").prepend(this.element);
    $("#work-title").hidden = false;
    this.setStatus(this.file ? "Uploading…" : "Sending the address…");
  }

  setStatus(words, kind = "") {
    this.status.textContent = words;
    this.status.className = `status ${kind}`;
  }

  fail(message) {
    this.setStatus("Failed", "failed");
    this.progress.hidden = true;
    this.problem.textContent = message;
    this.problem.hidden = false;
  }

  async run(engine, language, speakers) {
    const form = new FormData();
    if (this.file) form.append("file", this.file);
    else form.append("url", this.url);
    form.append("engine", engine);
    form.append("language", language);
    if (speakers) form.append("diarize", "true");
    try {
      const accepted = await (await call("/v1/jobs", { method: "POST", body: form })).json();
      this.jobId = accepted.job_id;
      this.setStatus(STATUS_WORDS[accepted.status]);
      for await (const { event, data } of jobEvents(this.jobId)) {
        if (event === "progress") this.showPiece(data);
        else if (event === "status") this.showJob(data);
      }
    } catch (error) {
      if (error instanceof Unauthorized) showProblem(error);
      this.fail(error instanceof ApiError && error.status === 415 ? `This file was refused: ${error.message}` : error.message);
    }
    loadRecent().catch(showProblem);
  }

  showProgress(progress) {
    if (!progress || !progress.audio_seconds_total) return;
    const percent = Math.min(100, (100 * progress.audio_seconds_done) / progress.audio_seconds_total);
    this.progress.hidden = false;
    this.progress.value = percent;
    const eta = progress.eta_seconds != null ? `, about ${clock(progress.eta_seconds)} left` : "";
    this.setStatus(`Transcribing ${Math.round(percent)} %${eta}`);
  }

  showPiece(piece) {
    this.showProgress(piece.progress);
    for (const segment of piece.segments) this.heard.set(segment.start, segment);
    this.showSegments([...this.heard.values()].sort((a, b) => a.start - b.start), false);
  }

  showJob(job) {
    if (job.status === "failed") {
      this.fail(job.error ? job.error.message : "The job failed.");
    } else if (job.status === "done") {
      this.progress.hidden = true;
      this.setStatus("Done", "done");
      this.showSegments(job.segments || [], true);
      this.finish(job);
    } else {
      this.setStatus(STATUS_WORDS[job.status] || job.status);
      this.showProgress(job.progress);
    }
  }

  showSegments(segments, playable) {
    this.segments.replaceChildren(
      ...segments.map((segment) => {
        const item = document.createElement("li");
        const button = document.createElement("button");
        button.type = "button";
        button.dataset.start = segment.start;
        button.disabled = !playable;
        const time = document.createElement("time");
        time.textContent = clock(segment.start);
        button.append(time);
        if (segment.speaker) {
          const speaker = document.createElement("b");
          speaker.className = "speaker";
          speaker.dataset.speaker = segment.speaker;
          speaker.textContent = segment.speaker;
          button.append(speaker);
        }
        button.append(spokenWords(segment));
        const who = segment.speaker ? `${segment.speaker}: ` : "";
        button.setAttribute("aria-label", `Play from ${clock(segment.start)}: ${who}${segment.text}`);
        item.append(button);
        return item;
      }),
    );
  }

  finish(job) {
    // The user's own file, or the recording at the address they gave, plays here; nothing is
    // downloaded back from the service.
    const video = this.file ? this.file.type.startsWith("video/") : (job.content_type || "").startsWith("video/");
    const media = document.createElement(video ? "video" : "audio");
    media.controls = true;
    media.src = this.file ? URL.createObjectURL(this.file) : this.url;
    this.element.querySelector(".media").replaceChildren(media);
    this.segments.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-start]");
      if (!button) return;
      media.currentTime = Number(button.dataset.start);
      media.play().catch(() => {});
      for (const other of this.segments.querySelectorAll(".playing")) other.classList.remove("playing");
      button.classList.add("playing");
    });
    const actions = this.element.querySelector(".actions");
    actions.hidden = false;
    actions.querySelector("[data-action=copy]").addEventListener("click", async () => {
      await navigator.clipboard.writeText(job.text || "");
      this.setStatus("Copied", "done");
    });
    const stem = this.name.replace(/\.[^.]*$/, "") || "transcript";
    for (const format of transcriptFormats) {
      const link = document.createElement("a");
      link.dataset.format = format;
      link.textContent = format;
      link.href = "#";
      link.download = `${stem}.${format}`;
      link.addEventListener("click", (event) => {
        event.preventDefault();
        download(this.jobId, format, link.download).catch((error) => this.fail(error.message));
      });
      actions.append(link);
    }
  }
}

// Downloads go through fetch, so that they carry the API key.
async function download(jobId, format, name) {
  const response = await call(`/v1/jobs/${jobId}/transcript?format=${format}`);
  const url = URL.createObjectURL(await response.blob());
  const link = document.createElement("a");
  link.href = url;
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

async function loadRecent() {
  const { jobs } = await (await call("/v1/jobs?limit=20")).json();
  const body = $("#recent tbody");
  body.replaceChildren(
    ...jobs.map((job) => {
      const row = document.createElement("tr");
      const created = new Date(job.created_at);
      const cells = [job.filename || job.job_id, STATUS_WORDS[job.status] || job.status, created.toLocaleString()];
      for (const text of cells) {
        const cell = document.createElement("td");
        cell.textContent = text;
        row.append(cell);
      }
      const actions = document.createElement("td");
      const remove = document.createElement("button");
      remove.type = "button";
      remove.className = "quiet";
      remove.textContent = "Delete";
      remove.setAttribute("aria-label", `Delete ${cells[0]}`);
      remove.addEventListener("click", async () => {
        try {
          await call(`/v1/jobs/${job.job_id}`, { method: "DELETE" });
          await loadRecent();
        } catch (error) {
          showProblem(error);
        }
      });
      actions.append(remove);
      row.append(actions);
      return row;
    }),
  );
  $("#recent").hidden = jobs.length === 0;
  $("#recent-empty").hidden = jobs.length > 0;
}

// Each of `sources` (files, or addresses of recordings) becomes a job of its own.
function transcribe(sources) {
  const engine = $("#engine").value;
  const language = $("#language").value;
  const speakers = $("#speakers").checked;
  for (const source of sources) new Card(source).run(engine, language, speakers);
}

async function start() {
  try {
    await loadEngines();
    await loadFormats();
    await loadRecent();
  } catch (error) {
    showProblem(error);
  }
}

$("#engine").addEventListener("change", fillLanguages);

$("#upload-form").addEventListener("submit", (event) => {
  event.preventDefault();
  const input = $("#files");
  const address = $("#media-url");
  const sources = [...input.files, ...(address.value.trim() ? [address.value.trim()] : [])];
  if (sources.length === 0) {
    input.setCustomValidity("Choose a recording, or give its address.");
    input.reportValidity();
    return;
  }
  transcribe(sources);
  input.value = "";
  address.value = "";
});
$("#files").addEventListener("change", () => $("#files").setCustomValidity(""));

const dropZone = $("#drop-zone");
dropZone.addEventListener("dragover", (event) => {
  event.preventDefault();
  dropZone.classList.add("over");
});
dropZone.addEventListener("dragleave", () => dropZone.classList.remove("over"));
dropZone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropZone.classList.remove("over");
  transcribe([...event.dataTransfer.files]);
});

$("#key-form").addEventListener("submit", (event) => {
  event.preventDefault();
  saveKey($("#key").value.trim());
  $("#key").value = "";
  $("#key-form").hidden = true;
  start();
});

$("#change-key").addEventListener("click", () => askForKey("Enter the API key to use."));
if (savedKey()) $("#change-key").hidden = false;

$("#refresh").addEventListener("click", () => loadRecent().catch(showProblem));

start();

// Below this probability a word is shown dimmed: the engine was unsure of it.
const UNSURE_BELOW = 0.5;

// Where each word ends in `text`, found in order; null if one is not there.
function wordEnds(text, words) {
  const ends = [];
  let read = 0;
  for (const word of words) {
    const at = text.indexOf(word.word, read);
    if (at < 0) return null;
    read = at + word.word.length;
    ends.push(read);
  }
  return ends;
}

function spokenWords(segment) {
  const text = document.createElement("span");
  if (!segment.words || !segment.words.length) {
    text.textContent = segment.text;
    return text;
  }
  // The segment's text says where the spaces go (Whisper splits "$12.50" into "$12" and ".50"),
  // when every word is found in it, in order; otherwise a space goes between each two.
  const ends = wordEnds(segment.text, segment.words);
  segment.words.forEach((word, index) => {
    if (ends) {
      text.append(segment.text.slice(index ? ends[index - 1] : 0, ends[index] - word.word.length));
    } else if (index) {
      text.append(" ");
    }
    const sure = word.probability == null || word.probability >= UNSURE_BELOW;
    if (sure) {
      text.append(word.word);
      return;
    }
    const unsure = document.createElement("span");
    unsure.className = "unsure";
    unsure.textContent = word.word;
    unsure.title = `Unsure (${Math.round(100 * word.probability)} %)`;
    text.append(unsure);
  });
  if (ends) text.append(segment.text.slice(ends[ends.length - 1]));
  return text;
}
