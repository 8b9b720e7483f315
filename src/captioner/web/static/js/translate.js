// Translation of the caption on the caption page, through /api/v1/translate.
// Offers only the languages the server's backend can serve (GET /api/v1/translate/languages); with no
// backend configured, the controls stay hidden. A failing service shows its message, never breaks the page.
// Each translation is announced as "captioner:translated" {model, caption, to, text} on #caption-tools,
// so that saving to the history keeps it.
(function () {
  "use strict";

  var tools = document.getElementById("caption-tools");
  if (!tools) return;
  var row = document.getElementById("translate-row");
  var select = document.getElementById("translate-to");
  var button = document.getElementById("translate-button");
  var output = document.getElementById("translation-text");
  var errorBox = document.getElementById("tools-error");
  var RIGHT_TO_LEFT = ["ar", "he", "fa", "ur"];
  var busy = false;

  function capitalise(text) {
    return text ? text.charAt(0).toUpperCase() + text.slice(1) : text;
  }

  function clearTranslation() {
    output.textContent = "";
    output.removeAttribute("lang");
    output.removeAttribute("dir");
  }

  fetch(tools.dataset.languagesApi, {headers: {"Accept": "application/json"}, credentials: "same-origin"})
    .then(function (response) { return response.ok ? response.json() : {languages: []}; })
    .then(function (json) {
      (json.languages || []).forEach(function (language) {
        select.appendChild(new Option(language.name, language.code));
      });
      row.hidden = select.options.length === 0;
    })
    .catch(function () { row.hidden = true; });

  document.addEventListener("captioner:captioned", clearTranslation);
  tools.addEventListener("captioner:result-chosen", clearTranslation);

  button.addEventListener("click", function () {
    var result = tools.chosenResult && tools.chosenResult();
    if (busy || !result) return;
    var to = select.value;
    var name = select.options[select.selectedIndex].text;
    busy = true;
    button.disabled = true;
    errorBox.textContent = "";
    clearTranslation();
    output.textContent = "Translating into " + name + "…";
    fetch(tools.dataset.translateApi, {
      method: "POST",
      headers: {"Content-Type": "application/json", "Accept": "application/json"},
      credentials: "same-origin",
      body: JSON.stringify({text: result.caption, to: to})
    }).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (json) {
        if (!response.ok) {
          var message = json.error && json.error.message;
          throw new Error(message ? capitalise(message) + "." : "The server answered " + response.status + ".");
        }
        return json;
      });
    }).then(function (json) {
      output.textContent = json.text;
      output.setAttribute("lang", to);
      if (RIGHT_TO_LEFT.indexOf(to) >= 0) output.setAttribute("dir", "rtl");
      tools.dispatchEvent(new CustomEvent("captioner:translated", {
        bubbles: true, detail: {model: result.model, caption: result.caption, to: to, text: json.text}
      }));
    }).catch(function (error) {
      clearTranslation();
      errorBox.textContent = "Translation failed: " + (error.message === "Failed to fetch"
        ? "the server could not be reached." : error.message);
    }).then(function () {
      busy = false;
      button.disabled = false;
    });
  });
})();
