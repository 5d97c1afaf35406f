// imagerec web page: photos in (drop, pick, paste, camera), labels out.
// No framework and no HTML strings: every piece of text goes in through textContent.
"use strict";

(() => {
  // The anonymous routes: open in every Auth mode unless the operator refuses anonymous drops.
  const ENDPOINT = "/api/public/classify?top_k=5";
  const MODELS = "/api/models"; // says which formats and sizes the API accepts
  const MAX_SIDE = 1024; // long side, in pixels, of a shrunk copy
  // A photo the API accepts as it is goes up unchanged when it is at most this big, so the
  // page's answer is the API's answer for the same file; bigger ones are shrunk first.
  const ORIGINAL_MAX_BYTES = 2_000_000;
  const UPLOADS = "/api/public/uploads"; // a form for a file too big for one request
  const JPEG_QUALITY = 0.9;
  const UPLOAD_TIMEOUT_MS = 90_000;
  // A body over this goes through an upload form (to S3 in the cloud) instead: the cloud API
  // takes about 4.4 MB per request (Lambda's 6 MB, less base64).
  const DIRECT_MAX_BYTES = 4_000_000;

  // What a person reads for each kind of failure: a short title and one plain sentence.
  const PROBLEMS = {
    notImage: {
      title: "Not an image",
      text: "This file doesn't look like a photo we can read. Try another photo.",
    },
    empty: { title: "Empty file", text: "This file is empty. Try another photo." },
    tooLarge: {
      title: "Too large",
      text: "This photo is too large to recognise. Try a smaller one.",
    },
    corrupt: {
      title: "Damaged photo",
      text: "This photo seems to be damaged, so it couldn't be read. Try another copy.",
    },
    network: {
      title: "Network down",
      text: "Couldn't reach the server. Check your connection, then try again.",
      retry: true,
    },
    busy: {
      title: "Server busy",
      text: "The server is busy right now. Wait a moment, then try again.",
      retry: true,
    },
    failing: {
      title: "Something went wrong",
      text: "The server couldn't recognise this photo just now. Please try again.",
      retry: true,
    },
  };

  const CODE_TO_PROBLEM = {
    empty_body: "empty",
    corrupt_image: "corrupt",
    unsupported_format: "notImage",
    missing_image: "notImage",
    invalid_base64: "notImage",
    invalid_multipart: "notImage",
    invalid_json: "notImage",
    payload_too_large: "tooLarge",
    image_too_large: "tooLarge",
  };

  const dropzone = document.getElementById("dropzone");
  const fileInput = document.getElementById("file-input");
  const cameraInput = document.getElementById("camera-input");
  const cameraButton = document.getElementById("camera-button");
  const results = document.getElementById("results");
  const resultsBar = document.getElementById("results-bar");
  const clearButton = document.getElementById("clear-button");
  const formatsLine = document.getElementById("formats");

  // ---- small helpers -----------------------------------------------------------------

  function el(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function capitalise(text) {
    const trimmed = String(text).trim();
    return trimmed.charAt(0).toLocaleUpperCase() + trimmed.slice(1);
  }

  // ImageNet names often list synonyms ("tabby, tabby cat"): show the first, keep all in a tooltip.
  function labelEl(className, label) {
    const node = el(className === "top-label" ? "p" : "span", className);
    const [first] = String(label).split(", ");
    node.textContent = capitalise(first || label);
    if (first !== label) node.title = capitalise(label);
    return node;
  }

  // The phrase a sentence uses ("a dog", "an admiral", "clothing") comes from the API, which
  // owns the a/an rule; an older server without it gets the bare first synonym.
  function phraseOf(item) {
    if (item && typeof item.phrase === "string" && item.phrase) return item.phrase;
    const [first] = String(item && item.label).split(", ");
    return first;
  }

  // A familiar category leads when it is the summary; the top class is then named below it.
  function leadingSummary(data, best) {
    const summary = data.summary;
    if (!summary || typeof summary.label !== "string" || summary.label === best.label) {
      return null;
    }
    const score = Number(summary.score);
    if (!Number.isFinite(score)) return null;
    return { label: summary.label, score, phrase: phraseOf(summary) };
  }

  function percent(score) {
    const value = Math.max(0, Math.min(1, Number(score) || 0)) * 100;
    if (value >= 9.95) return `${Math.round(value)}%`;
    if (value >= 0.1) return `${value.toFixed(1)}%`;
    return "<0.1%";
  }

  function duration(ms) {
    if (!Number.isFinite(ms)) return "";
    return ms >= 1000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.max(1, Math.round(ms))} ms`;
  }

  function bytes(n) {
    if (n >= 1e6) return `${Number((n / 1e6).toFixed(1))} MB`;
    if (n >= 1e3) return `${Math.round(n / 1e3)} KB`;
    return `${n} bytes`;
  }

  // ["JPEG", "PNG", "GIF"] → "JPEG, PNG or GIF"
  function orList(items) {
    if (items.length <= 1) return items.join("");
    return `${items.slice(0, -1).join(", ")} or ${items[items.length - 1]}`;
  }

  // ---- what the API accepts, asked once --------------------------------------------------

  // {formats, media_types, max_bytes, max_pixels} from GET /api/models, or null if the API
  // didn't say (then every photo is shrunk to a JPEG, which it always takes).
  const accepted = (async () => {
    try {
      const response = await fetch(MODELS, { headers: { Accept: "application/json" } });
      const data = response.ok ? await response.json() : null;
      const accepts = data && data.accepts;
      if (!accepts || !Array.isArray(accepts.formats) || !Array.isArray(accepts.media_types)) {
        return null;
      }
      return accepts;
    } catch {
      return null;
    }
  })();

  accepted.then((accepts) => {
    if (!accepts) return;
    formatsLine.textContent =
      `${orList(accepts.formats)}, up to ${bytes(accepts.max_bytes)} each; ` +
      "several at once if you like.";
    formatsLine.dataset.source = "api";
    PROBLEMS.notImage.text =
      `This file doesn't look like a photo we can read. Try a ${orList(accepts.formats)} file.`;
  });

  // ---- a result card per photo ---------------------------------------------------------

  class Card {
    constructor(file) {
      this.file = file;
      this.root = el("article", "card");
      this.root.dataset.state = "waiting";
      this.root.setAttribute("aria-label", file.name || "Pasted image");
      // Busy while it works, so screen readers announce the card once, when it's finished.
      this.root.setAttribute("aria-busy", "true");

      const figure = el("div", "thumb");
      this.preview = el("img");
      this.preview.alt = "";
      this.preview.decoding = "async";
      const url = URL.createObjectURL(file);
      const release = () => URL.revokeObjectURL(url);
      this.preview.addEventListener("load", release, { once: true });
      this.preview.addEventListener(
        "error",
        () => {
          release();
          figure.classList.add("no-preview");
          this.preview.remove();
          figure.append(el("span", "thumb-note", "No preview"));
        },
        { once: true },
      );
      this.preview.src = url;
      figure.append(this.preview);

      const body = el("div", "card-body");
      const name = el("p", "file-name", file.name || "Pasted image");
      name.title = file.name || "";
      this.status = el("p", "status", "Waiting…");
      this.progress = el("progress", "upload");
      this.progress.max = 1;
      this.progress.hidden = true;
      this.progress.setAttribute("aria-label", "Upload progress");
      this.outcome = el("div", "outcome");
      this.note = el("p", "copy-note");
      this.note.hidden = true;
      body.append(name, this.status, this.progress, this.outcome, this.note);
      this.root.append(figure, body);
    }

    setState(state, message) {
      this.root.dataset.state = state;
      const finished = state === "done" || state === "error";
      if (finished) this.root.removeAttribute("aria-busy");
      else this.root.setAttribute("aria-busy", "true");
      this.status.hidden = !message;
      if (message) this.status.textContent = message;
      this.progress.hidden = state !== "uploading";
    }

    uploading(fraction) {
      if (this.root.dataset.state !== "uploading") this.setState("uploading", "Uploading…");
      this.progress.value = fraction;
      this.progress.setAttribute("aria-valuetext", `${Math.round(fraction * 100)}%`);
    }

    // Say so when what was classified is not the file itself: the API, sent the original,
    // may rank the lower labels differently.
    sentCopy(prepared) {
      this.note.hidden = !prepared.copy;
      if (!prepared.copy) return;
      const what =
        prepared.copy === "smaller"
          ? `A smaller copy (${prepared.width} × ${prepared.height})`
          : "A JPEG copy";
      this.note.textContent =
        `${what} was classified, so the lower-ranked labels may differ a little ` +
        "from the API's answer for the original file.";
    }

    showResult(data, roundTripMs) {
      const predictions = data.predictions;
      this.setState("done", "");
      this.outcome.replaceChildren();
      const [best] = predictions;
      this.root.dataset.label = best.label;

      const headline = el("div", "headline");
      delete this.root.dataset.unsure;
      const summary = leadingSummary(data, best);
      if (summary) {
        // "A dog — 93%", then the fine-grained guess it is summed from.
        this.root.dataset.summary = summary.label;
        headline.append(
          el("p", "lead", "Looks like"),
          el("p", "top-label", `${capitalise(summary.phrase)} — ${percent(summary.score)}`),
          el("p", "top-score", `Most likely ${phraseOf(best)} (${percent(best.score)})`),
        );
      } else if (data.summary) {
        // The top class is the summary: sure enough on its own.
        this.root.dataset.summary = data.summary.label;
        headline.append(
          el("p", "lead", "Looks like"),
          labelEl("top-label", best.label),
          el("p", "top-score", `${percent(best.score)} confidence`),
        );
      } else {
        // No familiar category and no class is sure enough: say so, with the best guess.
        delete this.root.dataset.summary;
        this.root.dataset.unsure = "";
        headline.append(
          el("p", "lead", "Not sure"),
          el("p", "top-label", `Maybe ${phraseOf(best)}`),
          el("p", "top-score", `${percent(best.score)} confidence`),
        );
      }

      const chart = el("ol", "bars");
      chart.setAttribute("aria-label", "Top five guesses");
      for (const p of predictions) {
        const row = el("li", "bar-row");
        const track = el("span", "bar-track");
        const fill = el("span", "bar-fill");
        // CSSOM, not a style attribute, so the strict CSP allows it.
        fill.style.setProperty("--share", String(Math.max(0, Math.min(1, Number(p.score) || 0))));
        track.append(fill);
        row.append(labelEl("bar-label", p.label), track, el("span", "bar-pct", percent(p.score)));
        chart.append(row);
      }

      const facts = [];
      if (data.model && data.model.name) {
        facts.push(data.model.runtime ? `${data.model.name} (${data.model.runtime})` : data.model.name);
      }
      const serverMs = data.timing_ms && Number(data.timing_ms.total);
      const timing = [];
      if (Number.isFinite(serverMs)) timing.push(`${duration(serverMs)} on the server`);
      timing.push(`${duration(roundTripMs)} round trip`);
      facts.push(timing.join(", "));
      const meta = el("p", "meta", facts.join(" · "));

      this.outcome.append(headline, chart, meta);
    }

    showProblem(kind, detail, onRetry) {
      const problem = PROBLEMS[kind] || PROBLEMS.failing;
      this.setState("error", "");
      this.root.dataset.problem = kind;
      const box = el("div", "problem");
      box.append(el("p", "problem-title", problem.title), el("p", "problem-text", problem.text));
      if (detail) box.append(el("p", "problem-detail", detail));
      if (problem.retry && onRetry) {
        const again = el("button", "button small", "Try again");
        again.type = "button";
        again.addEventListener("click", () => {
          delete this.root.dataset.problem;
          this.outcome.replaceChildren();
          onRetry();
        });
        box.append(again);
      }
      this.outcome.replaceChildren(box);
    }
  }

  // ---- shrinking in the browser -------------------------------------------------------

  async function decode(file) {
    if (typeof createImageBitmap === "function") {
      try {
        return await createImageBitmap(file, { imageOrientation: "from-image" });
      } catch {
        // Fall through: older browsers reject the options; others can't read the format.
      }
    }
    const url = URL.createObjectURL(file);
    try {
      const img = new Image();
      img.src = url;
      await img.decode();
      return img;
    } catch {
      return null;
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  async function encodeJpeg(source, width, height) {
    const draw = (canvas) => {
      const ctx = canvas.getContext("2d");
      ctx.fillStyle = "#fff"; // transparent pixels become white, not black
      ctx.fillRect(0, 0, width, height);
      ctx.imageSmoothingQuality = "high";
      ctx.drawImage(source, 0, 0, width, height);
    };
    if (typeof OffscreenCanvas === "function") {
      const canvas = new OffscreenCanvas(width, height);
      if (typeof canvas.convertToBlob === "function") {
        draw(canvas);
        return canvas.convertToBlob({ type: "image/jpeg", quality: JPEG_QUALITY });
      }
    }
    const canvas = document.createElement("canvas");
    canvas.width = width;
    canvas.height = height;
    draw(canvas);
    return new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", JPEG_QUALITY));
  }

  // Does the API take this file as it is, and is it small enough to send unchanged?
  function sendAsIs(file, pixels, accepts) {
    if (!accepts) return false;
    const limit = Math.min(ORIGINAL_MAX_BYTES, Number(accepts.max_bytes) || 0);
    return (
      accepts.media_types.includes(file.type) &&
      file.size <= limit &&
      pixels <= (Number(accepts.max_pixels) || 0)
    );
  }

  // Returns what to upload: the file itself when the API takes it as it is (then the page's
  // answer is the API's), else a JPEG copy of at most MAX_SIDE px; the original bytes too
  // when the browser can't read the file (the server then decides).
  async function prepare(file) {
    const original = {
      body: file,
      type: file.type.startsWith("image/") ? file.type : "application/octet-stream",
      decoded: false,
      copy: null,
    };
    const accepts = await accepted;
    const image = await decode(file);
    if (!image) return original;
    try {
      const w = image.naturalWidth || image.width;
      const h = image.naturalHeight || image.height;
      if (!w || !h) return original;
      if (sendAsIs(file, w * h, accepts)) return { ...original, decoded: true };
      const scale = Math.min(1, MAX_SIDE / Math.max(w, h));
      const width = Math.max(1, Math.round(w * scale));
      const height = Math.max(1, Math.round(h * scale));
      const blob = await encodeJpeg(image, width, height);
      if (!blob) return original;
      const copy = scale < 1 ? "smaller" : "jpeg";
      return { body: blob, type: "image/jpeg", decoded: true, copy, width, height };
    } catch {
      return original;
    } finally {
      if (typeof image.close === "function") image.close();
    }
  }

  // ---- talking to the API (XMLHttpRequest, for upload progress) -----------------------

  // One request; resolves { status, data, text, roundTripMs } (status 0: no answer).
  // With `card`, the body's upload progress shows on it, then "Recognising…" if `thenRecognise`.
  function send(method, url, body, headers, card, thenRecognise) {
    return new Promise((resolve) => {
      const xhr = new XMLHttpRequest();
      let started = 0;
      const settle = (status) => {
        let data = null;
        try {
          data = JSON.parse(xhr.responseText);
        } catch {
          // Not JSON (a proxy's error page, S3's XML, or no body at all): the status decides.
        }
        resolve({ status, data, text: xhr.responseText || "", roundTripMs: performance.now() - started });
      };
      xhr.open(method, url);
      for (const [name, value] of Object.entries(headers)) xhr.setRequestHeader(name, value);
      xhr.timeout = UPLOAD_TIMEOUT_MS;
      if (card) {
        xhr.upload.addEventListener("progress", (event) => {
          if (event.lengthComputable && event.total > 0) card.uploading(event.loaded / event.total);
        });
        if (thenRecognise) {
          xhr.upload.addEventListener("load", () => card.setState("recognising", "Recognising…"));
        }
        card.uploading(0);
      }
      xhr.addEventListener("load", () => settle(xhr.status));
      xhr.addEventListener("error", () => settle(0));
      xhr.addEventListener("timeout", () => settle(0));
      xhr.addEventListener("abort", () => settle(0));
      started = performance.now();
      xhr.send(body);
    });
  }

  function upload(prepared, card) {
    const headers = { "Content-Type": prepared.type, Accept: "application/json" };
    return send("POST", ENDPOINT, prepared.body, headers, card, true);
  }

  // The upload flow, S3's presigned-POST contract whether the store is S3 or this server:
  // ask for a form, POST every field and then the file, then classify it by its id.
  async function uploadThenClassify(file, card) {
    const started = performance.now();
    const json = { Accept: "application/json" };
    const asked = await send("POST", UPLOADS, null, json);
    const upload = asked.data && asked.data.upload;
    if (asked.status !== 200 || !upload || typeof upload.url !== "string") return asked;
    if (Number(asked.data.max_bytes) > 0 && file.size > asked.data.max_bytes) {
      const limit = bytes(asked.data.max_bytes);
      return { status: 413, data: { error: { code: "payload_too_large", message: `The file is ${bytes(file.size)}; the limit is ${limit}.` } } };
    }
    const form = new FormData();
    for (const [name, value] of Object.entries(upload.fields || {})) form.append(name, value);
    form.append("file", file); // last: S3 ignores anything after the file
    const stored = await send("POST", upload.url, form, {}, card, false);
    if (stored.status < 200 || stored.status >= 300) {
      // S3 answers in XML: EntityTooLarge is the size limit; anything else is worth a retry.
      if (stored.status === 400 && stored.text.includes("EntityTooLarge")) return { ...stored, status: 413 };
      return stored.data ? stored : { ...stored, status: stored.status === 0 ? 0 : 502 };
    }
    card.setState("recognising", "Recognising…");
    const body = JSON.stringify({ upload: upload.id });
    const answer = await send("POST", ENDPOINT, body, { ...json, "Content-Type": "application/json" });
    return { ...answer, roundTripMs: performance.now() - started };
  }

  function problemFor(response, prepared) {
    const { status, data } = response;
    if (status === 0) return "network";
    const code = data && data.error && data.error.code;
    let kind = CODE_TO_PROBLEM[code];
    // The browser couldn't read it either, so to a person it's simply not an image.
    if (kind === "corrupt" && !prepared.decoded) kind = "notImage";
    if (kind) return kind;
    if (status === 413) return "tooLarge";
    if (status === 415) return "notImage";
    if (status === 429 || status === 503 || status === 504) return "busy";
    return "failing";
  }

  function isResult(data) {
    return (
      data &&
      Array.isArray(data.predictions) &&
      data.predictions.length > 0 &&
      data.predictions.every((p) => p && typeof p.label === "string")
    );
  }

  async function recognise(job) {
    const { file, card } = job;
    if (file.size === 0) {
      card.showProblem("empty");
      return;
    }
    card.setState("preparing", "Preparing…");
    const prepared = job.prepared || (job.prepared = await prepare(file));
    if (!prepared.decoded && file.type && !file.type.startsWith("image/")) {
      // A text file or a PDF: the browser can't read it and it doesn't claim to be an image.
      card.showProblem("notImage", `Its type is ${file.type}.`);
      return;
    }
    // What the browser can't decode (HEIC on most desktops, TIFF) goes up as it is, through
    // an upload form: it may be far over what one request to the API can carry.
    const direct = prepared.decoded && prepared.body.size <= DIRECT_MAX_BYTES;
    card.root.dataset.via = direct ? "direct" : "upload";
    const response = direct ? await upload(prepared, card) : await uploadThenClassify(file, card);
    if (response.status === 200 && isResult(response.data)) {
      card.showResult(response.data, response.roundTripMs);
      card.sentCopy(prepared);
      return;
    }
    const kind = problemFor(response, prepared);
    let detail = response.data && response.data.error && response.data.error.message;
    if (kind === "network" && navigator.onLine === false) detail = "Your device seems to be offline.";
    if (kind === "tooLarge" && !detail) detail = `Sent ${bytes(prepared.body.size)}.`;
    card.showProblem(kind, typeof detail === "string" ? detail : "", () => enqueue([job]));
  }

  // ---- one photo at a time, in order ----------------------------------------------------

  const queue = [];
  let running = false;

  async function drain() {
    if (running) return;
    running = true;
    results.dataset.busy = "true";
    while (queue.length > 0) {
      const job = queue.shift();
      try {
        await recognise(job);
      } catch (error) {
        console.error(error);
        job.card.showProblem("failing", "", () => enqueue([job]));
      }
    }
    running = false;
    delete results.dataset.busy;
  }

  function showResultsBar() {
    resultsBar.hidden = results.childElementCount === 0;
  }

  // Clear every card, and forget photos still waiting; one being sent finishes unseen.
  function clearResults() {
    queue.length = 0;
    results.replaceChildren();
    showResultsBar();
    dropzone.focus();
  }

  function enqueue(jobs) {
    for (const job of jobs) {
      job.card.setState("waiting", "Waiting…");
      queue.push(job);
    }
    drain();
  }

  // New photos go on top, keeping the order they were given in.
  function addFiles(fileList) {
    const files = Array.from(fileList || []).filter((f) => f instanceof File);
    if (files.length === 0) return;
    const jobs = files.map((file) => ({ file, card: new Card(file) }));
    const first = results.firstChild;
    for (const job of jobs) results.insertBefore(job.card.root, first);
    showResultsBar();
    enqueue(jobs);
  }

  // ---- ways in: click, keyboard, drag and drop, paste, camera ----------------------------

  dropzone.addEventListener("click", () => fileInput.click());
  dropzone.addEventListener("keydown", (event) => {
    if (event.key === "Enter" || event.key === " ") {
      event.preventDefault();
      fileInput.click();
    }
  });
  cameraButton.addEventListener("click", () => cameraInput.click());
  clearButton.addEventListener("click", clearResults);
  for (const input of [fileInput, cameraInput]) {
    input.addEventListener("change", () => {
      addFiles(input.files);
      input.value = ""; // so choosing the same photo again still fires "change"
    });
  }

  // A drop anywhere on the page counts; dropping a photo must never navigate away to it.
  let dragDepth = 0;
  const hasFiles = (event) =>
    event.dataTransfer && Array.from(event.dataTransfer.types || []).includes("Files");
  document.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    dragDepth += 1;
    dropzone.classList.add("is-dragover");
  });
  document.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    dropzone.classList.add("is-dragover");
  });
  document.addEventListener("dragleave", () => {
    dragDepth = Math.max(0, dragDepth - 1);
    if (dragDepth === 0) dropzone.classList.remove("is-dragover");
  });
  document.addEventListener("drop", (event) => {
    if (!event.dataTransfer) return;
    event.preventDefault();
    dragDepth = 0;
    dropzone.classList.remove("is-dragover");
    addFiles(event.dataTransfer.files);
  });

  document.addEventListener("paste", (event) => {
    const files = event.clipboardData ? Array.from(event.clipboardData.files) : [];
    if (files.length === 0) return; // plain text: leave it alone
    event.preventDefault();
    addFiles(files);
  });
})();
