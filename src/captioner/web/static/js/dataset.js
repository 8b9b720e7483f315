// The training-set review page: a folder's images with their caption files (/api/v1/datasets), edited in place.
// A caption is saved on blur or Ctrl+S (with the version it was read at); Esc brings back the saved text; a
// save over a file changed on disk shows both texts and lets the person pick. The toolbar's actions
// (captioning, find and replace, tags, trigger word) call the API and refresh the cards they changed.
(function () {
  "use strict";
  var root = document.getElementById("dataset");
  if (!root) { return; }
  var api = root.dataset.api;
  var folderSelect = document.getElementById("dataset-folder");
  var grid = document.getElementById("dataset-grid");
  var statusText = document.getElementById("dataset-status");
  var errorBox = document.getElementById("dataset-error");
  var counts = document.getElementById("dataset-counts");
  var pager = root.querySelector(".dataset-pager");
  var state = {folder: null, page: 1, pages: 1};
  var cards = {}; // image name -> {item, card, edit, box, conflict}
  var BATCH = 8; // images per captioning request: the most the server takes at once

  function capitalise(text) { return text ? text.charAt(0).toUpperCase() + text.slice(1) : text; }

  function plural(count, word) { return count + " " + word + (count === 1 ? "" : "s"); }

  function say(text) { statusText.textContent = text; errorBox.textContent = ""; }

  function fail(error) {
    errorBox.textContent = error.message === "Failed to fetch"
      ? "The server could not be reached. Check your connection and try again." : error.message;
  }

  // JSON from the API; a refusal becomes an Error carrying the answer (a 409 holds both texts).
  function call(method, path, body) {
    var options = {method: method, credentials: "same-origin", headers: {"Accept": "application/json"}};
    if (body !== undefined) {
      options.body = JSON.stringify(body);
      options.headers["Content-Type"] = "application/json";
    }
    return fetch(api + path, options).then(function (response) {
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) {
          var message = data.error && data.error.message;
          var error = new Error(message ? capitalise(message) + "." : "The server answered " + response.status + ".");
          error.status = response.status;
          error.data = data;
          throw error;
        }
        return data;
      });
    });
  }

  function query(params) {
    return "?" + new URLSearchParams(params).toString();
  }

  // -- folders and pages ----------------------------------------------------------------------------------
  function loadFolders() {
    var wanted = new URLSearchParams(window.location.search).get("folder");
    return call("GET", "").then(function (answer) {
      folderSelect.textContent = "";
      answer.folders.forEach(function (folder) {
        var label = (folder.name === "." ? "(the top folder)" : folder.name) + " — " + plural(folder.images, "image")
          + ", " + plural(folder.captions, "caption");
        folderSelect.appendChild(new Option(label, folder.name));
      });
      if (wanted !== null) {
        if (!answer.folders.some(function (folder) { return folder.name === wanted; })) {
          folderSelect.appendChild(new Option(wanted, wanted));
        }
        folderSelect.value = wanted;
      }
      if (!answer.folders.length && wanted === null) {
        say("No folder with images in the training sets folder yet.");
        return;
      }
      openFolder(folderSelect.value, 1);
    }).catch(fail);
  }

  function openFolder(name, page) {
    state.folder = name;
    var address = new URL(window.location.href);
    address.searchParams.set("folder", name);
    window.history.replaceState(null, "", address.toString());
    return call("GET", "/items" + query({folder: name, page: page})).then(function (answer) {
      state.page = answer.page;
      state.pages = answer.pages;
      counts.textContent = plural(answer.total, "image") + ", " + answer.uncaptioned + " without a caption";
      render(answer.items);
      pager.hidden = answer.pages < 2;
      document.getElementById("page-number").textContent = "Page " + answer.page + " of " + answer.pages;
      document.getElementById("page-previous").disabled = answer.page <= 1;
      document.getElementById("page-next").disabled = answer.page >= answer.pages;
      errorBox.textContent = "";
    }).catch(function (error) {
      grid.textContent = "";
      cards = {};
      counts.textContent = "";
      fail(error);
    });
  }

  function refresh() { return openFolder(state.folder, state.page); }

  // -- cards ----------------------------------------------------------------------------------------------
  function render(items) {
    grid.textContent = "";
    cards = {};
    items.forEach(function (item) { grid.appendChild(makeCard(item)); });
  }

  function makeCard(item) {
    var card = document.createElement("article");
    card.className = "dataset-card";
    var picture = document.createElement("img");
    picture.src = item.thumbnail_url;
    picture.alt = "";
    picture.loading = "lazy";
    var head = document.createElement("div");
    head.className = "card-head";
    var box = document.createElement("input");
    box.type = "checkbox";
    box.className = "select-item";
    box.setAttribute("aria-label", "Select " + item.image);
    var name = document.createElement("span");
    name.className = "file";
    name.textContent = item.image;
    var badge = document.createElement("span");
    badge.className = "badge";
    head.append(box, name, badge);
    var edit = document.createElement("textarea");
    edit.className = "caption-edit";
    edit.rows = 4;
    edit.setAttribute("aria-label", "Caption of " + item.image);
    var conflict = document.createElement("div");
    conflict.className = "conflict";
    conflict.hidden = true;
    card.append(picture, head, edit, conflict);
    var entry = {item: item, card: card, edit: edit, box: box, badge: badge, conflict: conflict};
    cards[item.image] = entry;
    show(entry, item);
    edit.addEventListener("input", function () { card.classList.toggle("dirty", edit.value !== (entry.item.text || "")); });
    edit.addEventListener("blur", function () { if (conflict.hidden) { save(entry); } });  // else: pick first
    edit.addEventListener("keydown", function (event) { onKey(entry, event); });
    return card;
  }

  function show(entry, item) {
    entry.item = item;
    entry.edit.value = item.text || "";
    entry.edit.placeholder = item.text === null ? "No caption file yet" : "";
    entry.card.classList.remove("dirty");
    entry.card.classList.toggle("uncaptioned", item.text === null);
    entry.badge.textContent = item.shared ? "stem shared with another image" : item.text === null ? "no caption"
      : item.written_by === "captioner" ? "written by captioner" : "";
    entry.edit.disabled = item.shared;
  }

  function save(entry) {
    var text = entry.edit.value;
    if (entry.saving || text === (entry.item.text || "")) { return Promise.resolve(); }
    entry.saving = true;
    return call("PUT", "/caption-file", {folder: state.folder, image: entry.item.image, text: text,
                                          version: entry.item.version})
      .then(function (item) {
        show(entry, item);
        entry.conflict.hidden = true;
        say(item.caption_file + " saved.");
      })
      .catch(function (error) {
        if (error.status === 409) { showConflict(entry, error.data.disk, text); } else { fail(error); }
      })
      .then(function () { entry.saving = false; });
  }

  // Both texts, and a button for each: keep mine (saved over the file as it is now), or take the disk's.
  function showConflict(entry, disk, mine) {
    var box = entry.conflict;
    box.textContent = "";
    var title = document.createElement("p");
    title.textContent = entry.item.caption_file + " changed on disk since it was read. Which text do you keep?";
    box.append(title, labelled("On disk", disk.text === null ? "(no caption file)" : disk.text, "disk-text"),
               labelled("Yours", mine, "your-text"));
    var keepMine = button("Keep mine", function () {
      box.hidden = true;
      entry.item = disk;
      entry.edit.value = mine;
      save(entry);
    });
    var takeDisk = button("Use the text on disk", function () {
      show(entry, disk);
      box.hidden = true;
      say("Took the text on disk for " + disk.caption_file + ".");
    });
    keepMine.className = "button small keep-mine";
    takeDisk.className = "button secondary small take-disk";
    box.append(keepMine, takeDisk);
    box.hidden = false;
    entry.card.classList.add("dirty");
    errorBox.textContent = capitalise(entry.item.caption_file) + " changed on disk: pick the text to keep.";
  }

  function labelled(label, text, className) {
    var block = document.createElement("div");
    block.className = className;
    var heading = document.createElement("strong");
    heading.textContent = label + ": ";
    var body = document.createElement("span");
    body.textContent = text;
    block.append(heading, body);
    return block;
  }

  function button(text, onClick) {
    var element = document.createElement("button");
    element.type = "button";
    element.textContent = text;
    element.addEventListener("click", onClick);
    return element;
  }

  // Ctrl+S saves, Esc reverts, arrows at either end of the text (or with Alt) move between cards.
  function onKey(entry, event) {
    var edit = entry.edit;
    if ((event.ctrlKey || event.metaKey) && event.key.toLowerCase() === "s") {
      event.preventDefault();
      save(entry);
      return;
    }
    if (event.key === "Escape") {
      event.preventDefault();
      edit.value = entry.item.text || "";
      entry.card.classList.remove("dirty");
      say("Back to the saved text of " + entry.item.image + ".");
      return;
    }
    var atStart = edit.selectionStart === 0 && edit.selectionEnd === 0;
    var atEnd = edit.selectionStart === edit.value.length && edit.selectionEnd === edit.value.length;
    var step = {ArrowLeft: -1, ArrowRight: 1, ArrowUp: -columns(), ArrowDown: columns()}[event.key];
    if (!step || event.shiftKey) { return; }
    if (event.altKey || (step < 0 && atStart) || (step > 0 && atEnd)) {
      var all = Array.prototype.slice.call(grid.querySelectorAll("textarea.caption-edit"));
      var next = all[all.indexOf(edit) + step];
      if (next) {
        event.preventDefault();
        next.focus();
        var end = step > 0 ? 0 : next.value.length;
        next.setSelectionRange(end, end);
      }
    }
  }

  function columns() {
    var first = grid.firstElementChild;
    if (!first) { return 1; }
    var count = 0;
    Array.prototype.forEach.call(grid.children, function (card) { if (card.offsetTop === first.offsetTop) { count++; } });
    return Math.max(count, 1);
  }

  function selected() {
    return Object.keys(cards).filter(function (name) { return cards[name].box.checked; });
  }

  function updateCards(items) {
    items.forEach(function (item) { if (cards[item.image]) { show(cards[item.image], item); } });
  }

  // -- toolbar ----------------------------------------------------------------------------------------------
  function value(id) { return document.getElementById(id).value; }

  function onClick(id, action) {
    document.getElementById(id).addEventListener("click", function () {
      errorBox.textContent = "";
      action().catch(fail);
    });
  }

  function needSelection() {
    var names = selected();
    if (!names.length) { throw new Error("Select one or more images first (the box on each card)."); }
    return names;
  }

  function captionBatches(names, written) {
    // Eight images a request (as many as the server takes); without names, the next uncaptioned ones until none are left (or none worked).
    var body = {folder: state.folder, model: value("dataset-model"), style: value("dataset-style"),
                existing: value("dataset-existing")};
    if (names) { body.images = names.slice(0, BATCH); }
    say("Captioning…" + (written ? " " + written + " caption files written so far." : ""));
    return call("POST", "/captions", body).then(function (answer) {
      var made = answer.results.filter(function (result) { return result.item; });
      updateCards(made.map(function (result) { return result.item; }));
      written += answer.results.filter(function (r) {
        return ["new", "replaced", "appended", "prepended", "updated"].indexOf(r.action) >= 0;
      }).length;
      var failed = answer.results.filter(function (result) { return result.error; });
      var rest = names ? names.slice(BATCH) : null;
      if ((rest && rest.length) || (!names && answer.remaining > 0 && made.length)) {
        return captionBatches(rest, written);
      }
      return refresh().then(function () {
        say(written + " caption file" + (written === 1 ? "" : "s") + " written."
            + (failed.length ? " Could not caption: " + failed.map(function (r) { return r.image + " (" + r.error + ")"; }).join("; ") : ""));
      });
    });
  }

  onClick("caption-missing", function () { return captionBatches(null, 0); });
  onClick("caption-selected", function () {
    return Promise.resolve().then(needSelection).then(function (names) { return captionBatches(names, 0); });
  });

  onClick("find-count", function () {
    return call("POST", "/replace", {folder: state.folder, find: value("find-text"), replace: value("replace-text"),
                                      apply: false}).then(function (answer) {
      say(answer.occurrences + " occurrence" + (answer.occurrences === 1 ? "" : "s") + " in " + answer.changed
          + " caption file" + (answer.changed === 1 ? "" : "s") + ".");
    });
  });
  onClick("replace-all", function () {
    return call("POST", "/replace", {folder: state.folder, find: value("find-text"), replace: value("replace-text"),
                                      apply: true}).then(function (answer) {
      updateCards(answer.items);
      say("Replaced in " + answer.changed + " caption file" + (answer.changed === 1 ? "" : "s") + ".");
    });
  });

  function tags(change) {
    return Promise.resolve().then(needSelection).then(function (names) {
      var body = {folder: state.folder, images: names};
      body[change] = value("tag-text");
      return call("POST", "/tags", body);
    }).then(function (answer) {
      updateCards(answer.items);
      say("Changed " + answer.changed + " caption file" + (answer.changed === 1 ? "" : "s") + ".");
    });
  }
  onClick("tag-add", function () { return tags("add"); });
  onClick("tag-remove", function () { return tags("remove"); });

  onClick("trigger-set", function () {
    return call("POST", "/trigger", {folder: state.folder, trigger: value("trigger-text"), old: value("trigger-old")})
      .then(function (answer) {
        updateCards(answer.items);
        say("The trigger word is first in " + answer.changed + " more caption file" + (answer.changed === 1 ? "" : "s") + ".");
      });
  });

  document.getElementById("select-all").addEventListener("change", function (event) {
    Object.keys(cards).forEach(function (name) { cards[name].box.checked = event.target.checked; });
  });
  folderSelect.addEventListener("change", function () { openFolder(folderSelect.value, 1); });
  document.getElementById("page-previous").addEventListener("click", function () { openFolder(state.folder, state.page - 1); });
  document.getElementById("page-next").addEventListener("click", function () { openFolder(state.folder, state.page + 1); });

  loadFolders();
})();
