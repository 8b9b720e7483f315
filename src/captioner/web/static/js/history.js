// Saved captions in the browser, through /api/v1/history:
//   - caption page: after "captioner:captioned", show the tools under the caption and a "Save to history"
//     button that sends the image again with the caption (the server keeps only a small thumbnail);
//     translations made with translate.js ("captioner:translated") are saved with it, or added to it
//     when it was saved already;
//   - history page: "Delete" removes an entry without reloading (the form still works without scripts).
(function () {
  "use strict";

  function capitalise(text) {
    return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
  }

  // The API's {"error": {"message"}} as a sentence, or a generic one.
  function readJson(response) {
    return response.json().catch(function () { return {}; }).then(function (json) {
      if (!response.ok) {
        var message = json.error && json.error.message;
        throw new Error(message ? capitalise(message) + "." : "The server answered " + response.status + ". Try again.");
      }
      return json;
    });
  }

  function networkMessage(error) {
    return error.message === "Failed to fetch" ? "The server could not be reached. Check your connection and try again."
                                               : error.message;
  }

  // -- caption page -------------------------------------------------------------------------------------
  function setUpSaving(tools) {
    var chooserRow = document.getElementById("tools-result-row");
    var chooser = document.getElementById("tools-result");
    var saveButton = document.getElementById("save-button");
    var saveStatus = document.getElementById("save-status");
    var errorBox = document.getElementById("tools-error");
    var image = null;
    var results = [];
    var translations = {}; // model -> {language code: text}
    var saved = {}; // model -> id of the saved entry

    function chosen() {
      return results.filter(function (r) { return r.model === chooser.value; })[0] || results[0];
    }

    function showSaveState() {
      var result = chosen();
      errorBox.textContent = "";
      saveStatus.textContent = "";
      if (result && saved[result.model]) {
        saveButton.disabled = true;
        saveButton.textContent = "Saved";
        var link = document.createElement("a");
        link.href = tools.dataset.historyUrl;
        link.textContent = "Open the history";
        saveStatus.append("Saved to history. ", link);
      } else {
        saveButton.disabled = !result;
        saveButton.textContent = "Save to history";
      }
    }

    document.addEventListener("captioner:captioned", function (event) {
      image = event.detail.image;
      results = (event.detail.results || []).filter(function (r) { return !r.error && r.caption; });
      translations = {};
      saved = {};
      chooser.textContent = "";
      results.forEach(function (result) {
        chooser.appendChild(new Option(result.model + ": " + result.caption, result.model));
      });
      chooserRow.hidden = results.length < 2;
      tools.hidden = results.length === 0;
      showSaveState();
    });

    document.addEventListener("captioner:reset", function () {
      image = null;
      results = [];
      tools.hidden = true;
    });

    chooser.addEventListener("change", function () {
      showSaveState();
      tools.dispatchEvent(new CustomEvent("captioner:result-chosen", {bubbles: true, detail: chosen()}));
    });

    tools.addEventListener("captioner:translated", function (event) {
      var detail = event.detail;
      translations[detail.model] = translations[detail.model] || {};
      translations[detail.model][detail.to] = detail.text;
      var id = saved[detail.model];
      if (!id) return;
      // Already saved: add the translation to the saved entry.
      var update = {translations: {}};
      update.translations[detail.to] = detail.text;
      fetch(tools.dataset.saveApi + "/" + id, {
        method: "PATCH", body: JSON.stringify(update), credentials: "same-origin",
        headers: {"Content-Type": "application/json", "Accept": "application/json"}
      }).then(readJson).catch(function (error) {
        errorBox.textContent = "Could not add the translation to the history: " + networkMessage(error);
      });
    });

    saveButton.addEventListener("click", function () {
      var result = chosen();
      if (!result || !image) return;
      var body = new FormData();
      body.append("image", image, image.name || "pasted-image");
      body.append("caption", result.caption);
      body.append("model", result.model);
      body.append("alternatives", JSON.stringify(result.alternatives || []));
      body.append("decoding", JSON.stringify(result.decoding || {}));
      body.append("translations", JSON.stringify(translations[result.model] || {}));
      saveButton.disabled = true;
      errorBox.textContent = "";
      saveStatus.textContent = "Saving…";
      fetch(tools.dataset.saveApi, {method: "POST", body: body, headers: {"Accept": "application/json"},
                                    credentials: "same-origin"})
        .then(readJson)
        .then(function (entry) {
          saved[result.model] = entry.id;
          showSaveState();
        })
        .catch(function (error) {
          saveStatus.textContent = "";
          errorBox.textContent = "Could not save: " + networkMessage(error);
          saveButton.disabled = false;
        });
    });

    // translate.js asks which caption is chosen.
    tools.chosenResult = chosen;
  }

  // -- history page -------------------------------------------------------------------------------------
  function setUpDeleting(list) {
    var statusLine = document.getElementById("history-status");
    var errorBox = document.getElementById("history-error");

    list.addEventListener("submit", function (event) {
      var form = event.target.closest(".history-delete");
      if (!form) return;
      event.preventDefault();
      var entry = form.closest(".history-entry");
      var caption = entry.querySelector(".history-caption").textContent.trim();
      if (!window.confirm("Delete “" + caption + "” from the history?")) return;
      var button = form.querySelector("button");
      button.disabled = true;
      errorBox.textContent = "";
      fetch(form.dataset.api, {method: "DELETE", headers: {"Accept": "application/json"}, credentials: "same-origin"})
        .then(function (response) {
          if (response.status === 204 || response.status === 404) return; // gone either way
          return readJson(response);
        })
        .then(function () {
          var next = entry.nextElementSibling || entry.previousElementSibling;
          entry.remove();
          statusLine.textContent = "Deleted “" + caption + "”.";
          if (next) {
            next.querySelector("button").focus();
          } else {
            var empty = document.createElement("p");
            empty.className = "card history-empty";
            empty.textContent = "No saved captions left here.";
            list.replaceWith(empty);
            var count = document.querySelector(".history-count");
            if (count) count.remove();
          }
        })
        .catch(function (error) {
          button.disabled = false;
          errorBox.textContent = "Could not delete: " + networkMessage(error);
        });
    });
  }

  var tools = document.getElementById("caption-tools");
  if (tools) setUpSaving(tools);
  var list = document.getElementById("history-list");
  if (list) setUpDeleting(list);
})();
