// The "caption many" page: sends the dropped images as one job to /api/v1/jobs, polls it, fills the
// table, lets a person edit captions (saved at once), and offers the downloads and "save all to history".
(function () {
  "use strict";
  var form = document.getElementById("many-form");
  if (!form) { return; }
  var input = document.getElementById("many-input");
  var folderInput = document.getElementById("folder-input");
  var dropzone = document.getElementById("many-dropzone");
  var start = document.getElementById("many-start");
  var chosenText = document.getElementById("many-chosen");
  var statusText = document.getElementById("many-status");
  var errorBox = document.getElementById("many-error");
  var progress = document.getElementById("many-progress");
  var table = document.getElementById("many-table");
  var actions = document.getElementById("many-actions");
  var maxImages = parseInt(form.dataset.maxImages, 10);
  var files = [];
  var jobUrl = null;
  var jobFiles = []; // the files of the job shown, in its order: each row's thumbnail comes from its file
  var previews = []; // object URLs of those thumbnails, released when another job starts

  function looksLikeImage(file) {
    return !file.type || file.type.indexOf("image/") === 0 || /\.(heic|heif|avif)$/i.test(file.name);
  }

  function choose(list) {
    files = Array.prototype.filter.call(list, looksLikeImage);
    errorBox.textContent = "";
    if (files.length > maxImages) {
      errorBox.textContent = files.length + " images chosen; one job takes at most " + maxImages + ".";
      files = [];
    }
    chosenText.textContent = files.length ? files.length + " image" + (files.length === 1 ? "" : "s") + " chosen." : "";
    start.disabled = files.length === 0;
  }

  function readEntries(entry, found) {
    // A dropped folder: walk it (the browser gives its entries in chunks).
    return new Promise(function (resolve) {
      if (entry.isFile) {
        entry.file(function (file) { found.push(file); resolve(); }, function () { resolve(); });
        return;
      }
      var reader = entry.createReader();
      var children = [];
      (function more() {
        reader.readEntries(function (batch) {
          if (!batch.length) {
            Promise.all(children.map(function (child) { return readEntries(child, found); })).then(resolve);
            return;
          }
          children = children.concat(Array.prototype.slice.call(batch));
          more();
        }, function () { resolve(); });
      })();
    });
  }

  input.addEventListener("change", function () { choose(input.files); });
  folderInput.addEventListener("change", function () { choose(folderInput.files); });
  document.getElementById("folder-button").addEventListener("click", function () { folderInput.click(); });
  dropzone.addEventListener("dragover", function (event) { event.preventDefault(); dropzone.classList.add("dragging"); });
  dropzone.addEventListener("dragleave", function () { dropzone.classList.remove("dragging"); });
  dropzone.addEventListener("drop", function (event) {
    event.preventDefault();
    dropzone.classList.remove("dragging");
    var items = event.dataTransfer.items;
    var entries = [];
    for (var i = 0; items && i < items.length; i++) {
      var entry = items[i].webkitGetAsEntry && items[i].webkitGetAsEntry();
      if (entry) { entries.push(entry); }
    }
    if (!entries.length) { choose(event.dataTransfer.files); return; }
    var found = [];
    Promise.all(entries.map(function (entry) { return readEntries(entry, found); })).then(function () { choose(found); });
  });

  function errorMessage(response, data) {
    return (data && data.error && data.error.message) || ("The server answered " + response.status + ".");
  }

  function requestJson(url, options) {
    return fetch(url, Object.assign({headers: {"Accept": "application/json"}, credentials: "same-origin"}, options))
      .then(function (response) {
        return response.json().catch(function () { return null; }).then(function (data) {
          if (!response.ok) { throw new Error(errorMessage(response, data)); }
          return data;
        });
      });
  }

  form.addEventListener("submit", function (event) {
    event.preventDefault();
    if (!files.length) { return; }
    var body = new FormData();
    files.forEach(function (file) { body.append("images", file, file.webkitRelativePath || file.name); });
    body.append("model", document.getElementById("many-model").value);
    var style = document.getElementById("many-style").value;
    if (style !== "caption") body.append("style", style);  // as the caption page: else the model's own style
    window.captionerTags.appendFields(body, function (name) { return "many-" + name; });
    start.disabled = true;
    errorBox.textContent = "";
    previews.forEach(function (url) { URL.revokeObjectURL(url); });
    previews = [];
    jobFiles = files.slice();
    table.tBodies[0].textContent = "";
    statusText.textContent = "Uploading " + files.length + " images…";
    requestJson(form.dataset.api, {method: "POST", body: body}).then(function (job) {
      jobUrl = form.dataset.api + "/" + job.id;
      document.getElementById("download-csv").href = jobUrl + "?format=csv";
      document.getElementById("download-json").href = jobUrl + "?format=json";
      show(job);
      poll();
    }).catch(function (error) {
      errorBox.textContent = error.message;
      statusText.textContent = "";
      start.disabled = false;
    });
  });

  function poll() {
    requestJson(jobUrl).then(function (job) {
      show(job);
      if (job.status === "queued" || job.status === "running") { setTimeout(poll, 500); }
    }).catch(function (error) { errorBox.textContent = error.message; });
  }

  function show(job) {
    progress.hidden = false;
    progress.max = Math.max(job.total, 1);
    progress.value = job.done;
    var failed = job.items.filter(function (item) { return item.error; }).length;
    statusText.textContent = job.status === "failed" ? "The job failed: " + job.error
      : job.done + " of " + job.total + " images done" + (failed ? " (" + failed + " could not be read)" : "")
        + (job.status === "done" ? "." : "…");
    table.hidden = false;
    var body = table.tBodies[0];
    job.items.forEach(function (item) {
      var row = body.rows[item.index];
      if (!row) {
        row = body.insertRow(item.index);
        row.insertCell().textContent = item.index + 1;
        row.insertCell().appendChild(thumbnail(jobFiles[item.index], item.file_name));
        var file = row.insertCell();
        file.className = "file";
        file.textContent = item.file_name || "";
        row.insertCell().className = "caption";
        row.insertCell().className = "size";
      }
      var cell = row.cells[3];
      if (item.error) {
        row.className = "failed";
        cell.textContent = item.error;
      } else if (item.caption !== null && !cell.querySelector("input")) {
        var edit = document.createElement("input");
        edit.type = "text";
        edit.className = "caption-edit";
        edit.value = item.caption;
        edit.setAttribute("aria-label", "Caption of " + (item.file_name || "image " + (item.index + 1)));
        edit.addEventListener("change", function () { saveEdit(item.index, edit, row); });
        edit.addEventListener("keydown", function (event) {
          if (event.key === "Enter") { event.preventDefault(); edit.blur(); }  // save, never start a new job
        });
        cell.textContent = "";
        cell.appendChild(edit);
        showTags(cell, item);
      } else if (item.caption === null) {
        cell.textContent = "…";
      }
      row.cells[4].textContent = item.width ? item.width + "×" + item.height : "";
    });
    actions.hidden = !(job.status === "done" && job.items.some(function (item) { return item.caption; }));
    if (job.status === "done" || job.status === "failed") { start.disabled = files.length === 0; }
  }

  // The browser's own picture of the chosen file (nothing is fetched back from the server); formats it cannot
  // show (HEIC in most browsers) leave the cell with the file's name instead.
  function thumbnail(file, name) {
    var picture = document.createElement("img");
    picture.className = "thumbnail";
    picture.alt = "";
    picture.title = name || "";
    if (file) {
      var url = URL.createObjectURL(file);
      previews.push(url);
      picture.src = url;
      picture.addEventListener("error", function () { picture.replaceWith(document.createTextNode("—")); });
    }
    return picture;
  }

  // A tagger's tags as it found them, each with its probability ("cat 0.92"), and its rating apart.
  function showTags(cell, item) {
    if (!item.tags || !item.tags.length) return;
    var list = document.createElement("ul");
    list.className = "tag-list";
    list.setAttribute("aria-label", "Tags, each with its probability");
    window.captionerTags.fillList(list, item.tags);
    cell.appendChild(list);
    if (item.rating) {
      var rating = document.createElement("p");
      rating.className = "rating";
      rating.textContent = "Rating: " + item.rating.label + " " + item.rating.probability.toFixed(2);
      cell.appendChild(rating);
    }
  }

  function saveEdit(index, edit, row) {
    requestJson(jobUrl + "/items/" + index, {
      method: "PATCH", body: JSON.stringify({caption: edit.value}),
      headers: {"Accept": "application/json", "Content-Type": "application/json"}
    }).then(function (item) {
      edit.value = item.caption;
      row.classList.add("edited");
      statusText.textContent = "Caption " + (index + 1) + " saved.";
    }).catch(function (error) { errorBox.textContent = error.message; });
  }

  document.getElementById("save-history").addEventListener("click", function () {
    requestJson(jobUrl + "/history", {method: "POST"}).then(function (answer) {
      statusText.textContent = "Saved " + answer.saved + " captions to the history.";
    }).catch(function (error) { errorBox.textContent = error.message; });
  });
})();
