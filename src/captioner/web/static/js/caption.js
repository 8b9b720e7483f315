// The caption page: choose an image (drop, file chooser, paste), caption it through the JSON API,
// show the caption(s) with alternatives and a copy button.
//
// Extension points for other features (saving, translation):
//   - after every caption, the result area dispatches a bubbling CustomEvent "captioner:captioned"
//     with detail = {response, results, image, compare}: the API's JSON, its list of per-model results,
//     the image File/Blob, and whether all models were compared;
//   - "captioner:reset" is dispatched when the page is reset;
//   - #caption-extensions is an empty area under the result for their controls.
(function () {
  "use strict";

  var form = document.getElementById("caption-form");
  if (!form) return;

  var input = document.getElementById("image-input");
  var dropzone = document.getElementById("dropzone");
  var preview = document.getElementById("preview");
  var fileName = document.getElementById("file-name");
  var modelSelect = document.getElementById("model-select");
  var beamInput = document.getElementById("beam-input");
  var lengthInput = document.getElementById("length-input");
  var button = document.getElementById("caption-button");
  var statusLine = document.getElementById("caption-status");
  var errorBox = document.getElementById("caption-error");
  var resultArea = document.getElementById("caption-result");
  var template = document.getElementById("result-template");
  var csrfToken = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  var maxBytes = Number(form.dataset.maxBytes);
  var maxMb = form.dataset.maxMb;
  var compareAll = form.dataset.compareAll;
  var image = null; // the chosen File or Blob
  var previewUrl = null;
  var busy = false;

  // -- messages -----------------------------------------------------------------------------------------
  function say(text) {
    statusLine.textContent = text;
  }

  function fail(text) {
    errorBox.textContent = text;
    if (text) say("");
  }

  // -- choosing an image --------------------------------------------------------------------------------
  function setImage(file, source) {
    fail("");
    if (!file) return;
    if (file.type && file.type.indexOf("image/") !== 0) {
      fail("“" + (file.name || "That file") + "” is not an image. Choose a JPEG, PNG, WebP, GIF or BMP file.");
      return;
    }
    if (file.size === 0) {
      fail("That file is empty. Choose the image again.");
      return;
    }
    if (maxBytes && file.size > maxBytes) {
      fail("That image is " + (file.size / 1048576).toFixed(1) + " MB; the limit is " + maxMb +
           " MB. Choose a smaller image or resize it first.");
      return;
    }
    image = file;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = URL.createObjectURL(file);
    preview.src = previewUrl;
    preview.alt = "Preview of the chosen image";
    preview.hidden = false;
    dropzone.classList.add("has-image");
    fileName.textContent = (file.name || "Pasted image") + " · " + formatSize(file.size) +
      (source === "paste" ? " · pasted" : "");
    clearResults();
    say("Ready. Choose the options and press Caption.");
  }

  function formatSize(bytes) {
    if (bytes < 1024) return bytes + " bytes";
    if (bytes < 1048576) return (bytes / 1024).toFixed(0) + " KB";
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  input.addEventListener("change", function () {
    if (input.files && input.files[0]) setImage(input.files[0], "chooser");
  });

  ["dragenter", "dragover"].forEach(function (name) {
    dropzone.addEventListener(name, function (event) {
      event.preventDefault();
      dropzone.classList.add("dragging");
    });
  });
  ["dragleave", "dragend", "drop"].forEach(function (name) {
    dropzone.addEventListener(name, function () {
      dropzone.classList.remove("dragging");
    });
  });
  dropzone.addEventListener("drop", function (event) {
    event.preventDefault();
    var files = event.dataTransfer && event.dataTransfer.files;
    if (files && files[0]) setImage(files[0], "drop");
  });
  // A file dropped next to the drop zone must not make the browser leave the page.
  window.addEventListener("dragover", function (event) { event.preventDefault(); });
  window.addEventListener("drop", function (event) { event.preventDefault(); });

  document.addEventListener("paste", function (event) {
    var items = (event.clipboardData && event.clipboardData.items) || [];
    for (var i = 0; i < items.length; i++) {
      if (items[i].kind === "file" && items[i].type.indexOf("image/") === 0) {
        event.preventDefault();
        setImage(items[i].getAsFile(), "paste");
        return;
      }
    }
  });

  // -- options ------------------------------------------------------------------------------------------
  function chosenMethod() {
    var checked = form.querySelector('input[name="method"]:checked');
    return checked ? checked.value : "greedy";
  }

  function syncBeam() {
    beamInput.disabled = chosenMethod() !== "beam";
  }
  form.querySelectorAll('input[name="method"]').forEach(function (radio) {
    radio.addEventListener("change", syncBeam);
  });
  syncBeam();

  // -- captioning ---------------------------------------------------------------------------------------
  function setBusy(value) {
    busy = value;
    button.disabled = value;
    button.classList.toggle("busy", value);
    resultArea.setAttribute("aria-busy", value ? "true" : "false");
  }

  function request() {
    var data = new FormData();
    data.append("image", image, image.name || "pasted-image");
    var model = modelSelect ? modelSelect.value : "";
    if (model === compareAll) data.append("compare", "all");
    else if (model) data.append("model", model);
    data.append("method", chosenMethod());
    if (chosenMethod() === "beam" && beamInput.value) data.append("beam", beamInput.value);
    if (lengthInput.value) data.append("max_length", lengthInput.value);
    var promptInput = document.getElementById("prompt-input");
    if (promptInput && promptInput.value.trim()) data.append("prompt", promptInput.value.trim());
    var scoreInput = document.getElementById("score-input");
    if (scoreInput && scoreInput.checked) data.append("score", "clip");
    window.captionerTags.appendFields(data, function (name) { return name + "-input"; });
    var styleInput = document.getElementById("style-input");
    if (styleInput && styleInput.value !== "caption") data.append("style", styleInput.value);
    data.append("attention", "1"); // models that attend send each word's map (attention.js shows them)
    return data;
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (busy) return;
    if (!image) {
      fail("Choose an image first: drop one on the box, choose a file, or paste one.");
      input.focus();
      return;
    }
    var body = request();
    var compare = body.get("compare") === "all";
    fail("");
    clearResults();
    setBusy(true);
    say(compare ? "Captioning with every model…" : "Captioning…");
    fetch(form.dataset.api, {
      method: "POST",
      body: body,
      headers: {"Accept": "application/json", "X-CSRFToken": csrfToken},
      credentials: "same-origin"
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok) {
          var message = json.error && json.error.message;
          throw new Error(message ? capitalise(message) + "." : "The server answered " + response.status + ". Try again.");
        }
        return json;
      });
    }).then(function (json) {
      var results = json.results || [json];
      showResults(results);
      say(resultSummary(results, json));
      resultArea.dispatchEvent(new CustomEvent("captioner:captioned", {
        bubbles: true,
        detail: {response: json, results: results, image: image, compare: compare}
      }));
    }).catch(function (error) {
      fail(error.message === "Failed to fetch" ? "The server could not be reached. Check your connection and try again." : error.message);
    }).then(function () {
      setBusy(false);
    });
  });

  function capitalise(text) {
    return text.charAt(0).toUpperCase() + text.slice(1);
  }

  function resultSummary(results, json) {
    var ok = results.filter(function (r) { return !r.error; });
    if (results.length === 1) {
      return ok.length ? "Captioned by " + results[0].model + " in " + Math.round(json.timings.total_ms) + " ms."
                       : "The model could not caption this image.";
    }
    return ok.length + " of " + results.length + " models captioned the image in " +
      Math.round(json.timings.total_ms) + " ms.";
  }

  // -- results ------------------------------------------------------------------------------------------
  function clearResults() {
    resultArea.textContent = "";
    resultArea.classList.remove("compare");
  }

  function showResults(results) {
    clearResults();
    resultArea.classList.toggle("compare", results.length > 1);
    results.forEach(function (result) {
      resultArea.appendChild(renderResult(result));
    });
    var first = results.filter(function (r) { return !r.error; })[0];
    if (first) preview.alt = "Chosen image: " + first.caption;
  }

  function renderResult(result) {
    var card = template.content.firstElementChild.cloneNode(true);
    card.dataset.model = result.model;
    card.querySelector(".result-model").textContent = result.model;
    card.querySelector(".result-kind").textContent = result.kind + (result.dataset ? " · " + result.dataset : "");
    var timings = result.timings;
    card.querySelector(".result-latency").textContent = timings ? Math.round(timings.total_ms) + " ms" : "";
    if (result.error) {
      var problem = document.createElement("p");
      problem.className = "alert result-error";
      problem.textContent = capitalise(result.error.message);
      card.querySelector(".caption-text").replaceWith(problem);
      ["clip-score", "result-actions", "alternatives", "result-timings"].forEach(function (name) {
        card.querySelector("." + name).remove();
      });
      return card;
    }
    card.querySelector(".caption-text").textContent = result.caption;
    showTags(card, result);
    var rated = typeof result.clip_score === "number";
    card.querySelector(".clip-score").hidden = !rated;
    card.querySelector(".clip-score-value").textContent = rated ? result.clip_score.toFixed(2) : "";
    card.querySelector(".result-timings").textContent = "model " + Math.round(timings.model_ms) + " ms · queued " +
      Math.round(timings.queue_ms) + " ms · batch of " + timings.batch_size;
    var alternatives = result.alternatives || [];  // the next-best captions, never the caption itself
    var list = card.querySelector(".alternatives-list");
    alternatives.forEach(function (alternative) {
      var item = document.createElement("li");
      var text = document.createElement("span");
      text.className = "alternative-text";
      text.textContent = alternative.text;
      var score = document.createElement("span");
      score.className = "alternative-score";
      score.textContent = alternative.log_prob.toFixed(2);
      score.title = "log-probability";
      item.append(text, " ", score);
      list.appendChild(item);
    });
    card.querySelector(".alternatives").hidden = alternatives.length === 0;
    return card;
  }

  // A tagger's tags, each with its probability ("cat 0.92"), its rating apart, and the language the text is in.
  function showTags(card, result) {
    var scores = result.keyword_scores || [];
    var list = card.querySelector(".tag-list");
    window.captionerTags.fillList(list, scores.map(function (probability, index) {
      return {name: result.keywords[index], probability: probability};
    }));
    list.hidden = scores.length === 0;
    var rating = card.querySelector(".rating");
    rating.hidden = !result.rating;
    if (result.rating) {
      rating.querySelector(".rating-label").textContent = result.rating.label;
      rating.querySelector(".rating-probability").textContent = result.rating.probability.toFixed(2);
    }
    var language = result.language;
    var note = card.querySelector(".result-language");
    note.hidden = !language;
    if (language) {
      note.textContent = language.how === "translated" ? "Translated into " + language.code + " by " + language.translator
        : "Written in " + language.code + (language.how === "instructed" ? ", as instructed" : "");
    }
  }

  // Copy buttons, for results shown by this script and by the server alike.
  resultArea.addEventListener("click", function (event) {
    var copy = event.target.closest(".copy-button");
    if (!copy) return;
    var text = copy.closest(".result").querySelector(".caption-text").textContent.trim();
    copyText(text).then(function () {
      copy.textContent = "Copied";
      say("Caption copied to the clipboard.");
      setTimeout(function () { copy.textContent = "Copy as alt text"; }, 1600);
    }, function () {
      say("Copying is not allowed here; select the caption and copy it by hand.");
    });
  });

  function copyText(text) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      var area = document.createElement("textarea");
      area.value = text;
      area.setAttribute("readonly", "");
      area.className = "visually-hidden";
      document.body.appendChild(area);
      area.select();
      var done = document.execCommand("copy");
      area.remove();
      if (done) resolve(); else reject(new Error("copy refused"));
    });
  }

  // -- reset --------------------------------------------------------------------------------------------
  form.addEventListener("reset", function () {
    image = null;
    if (previewUrl) URL.revokeObjectURL(previewUrl);
    previewUrl = null;
    preview.removeAttribute("src");
    preview.hidden = true;
    dropzone.classList.remove("has-image");
    fileName.textContent = "";
    clearResults();
    fail("");
    say("Your caption will appear here.");
    setTimeout(syncBeam, 0); // after the browser has reset the radios
    resultArea.dispatchEvent(new CustomEvent("captioner:reset", {bubbles: true}));
  });
})();
