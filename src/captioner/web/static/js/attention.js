// The attention view of the caption page: when a model that attends answered (the API's "attention":
// {grid: [rows, cols], words: [...], maps: [[rows * cols weights], ...]}), one button per word; choosing a
// word draws the image with that word's map over it (brighter = more attention), smoothly scaled up.
(function () {
  "use strict";

  var view = document.getElementById("attention-view");
  var results = document.getElementById("caption-result");
  if (!view || !results) return;
  var wordsBox = document.getElementById("attention-words");
  var canvas = document.getElementById("attention-canvas");
  var picture = null; // the decoded image of the last caption
  var attention = null;

  function hide() {
    view.hidden = true;
    wordsBox.textContent = "";
    attention = null;
  }

  function draw(index) {
    if (!picture || !attention) return;
    var rows = attention.grid[0], cols = attention.grid[1];
    var weights = attention.maps[index];
    var peak = Math.max.apply(null, weights) || 1;
    var scale = 360 / Math.max(picture.width, picture.height); // small pictures grow, large ones shrink
    canvas.width = Math.round(picture.width * scale);
    canvas.height = Math.round(picture.height * scale);
    var context = canvas.getContext("2d");
    context.drawImage(picture, 0, 0, canvas.width, canvas.height);
    // the map as a rows x cols picture, darkest where the model did not look, scaled up with smoothing
    var grid = document.createElement("canvas");
    grid.width = cols;
    grid.height = rows;
    var cells = grid.getContext("2d").createImageData(cols, rows);
    for (var i = 0; i < rows * cols; i++) {
      cells.data[i * 4 + 3] = Math.round(200 * (1 - weights[i] / peak));
    }
    grid.getContext("2d").putImageData(cells, 0, 0);
    context.imageSmoothingEnabled = true;
    context.drawImage(grid, 0, 0, canvas.width, canvas.height);
    canvas.setAttribute("aria-label", "Where the model looked for the word “" + attention.words[index] + "”");
    wordsBox.querySelectorAll(".attention-word").forEach(function (button, n) {
      button.setAttribute("aria-pressed", n === index ? "true" : "false");
    });
  }

  function show(result, image) {
    attention = result.attention;
    wordsBox.textContent = "";
    attention.words.forEach(function (word, index) {
      var button = document.createElement("button");
      button.type = "button";
      button.className = "attention-word";
      button.textContent = word;
      button.setAttribute("aria-pressed", "false");
      button.addEventListener("click", function () { draw(index); });
      wordsBox.appendChild(button);
    });
    view.hidden = false;
    var url = URL.createObjectURL(image);
    var img = new Image();
    img.onload = function () {
      picture = img;
      draw(0);
      URL.revokeObjectURL(url);
    };
    img.src = url;
  }

  document.addEventListener("captioner:captioned", function (event) {
    var detail = event.detail || {};
    var attending = (detail.results || []).filter(function (r) { return r.attention && r.attention.words.length; })[0];
    if (attending && detail.image) show(attending, detail.image);
    else hide();
  });
  document.addEventListener("captioner:reset", hide);
})();
