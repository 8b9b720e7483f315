// What the caption pages share about tags: a tagger's tags drawn as items ("cat 0.92": its name and its
// probability), and the tag, template, trigger and language fields a caption request carries.
window.captionerTags = (function () {
  "use strict";

  // Fill the list with one item per tag; tags are {name, probability}.
  function fillList(list, tags) {
    tags.forEach(function (tag) {
      var item = document.createElement("li");
      item.className = "tag";
      var name = document.createElement("span");
      name.className = "tag-name";
      name.textContent = tag.name;
      var probability = document.createElement("span");
      probability.className = "tag-probability";
      probability.textContent = tag.probability.toFixed(2);
      item.append(name, " ", probability);
      list.appendChild(item);
    });
  }

  // Add the filled tags-from, template, trigger and language fields to a request's FormData; idOf(name) gives
  // each field's element id on the page.
  function appendFields(data, idOf) {
    ["tags-from", "template", "trigger", "language"].forEach(function (name) {
      var field = document.getElementById(idOf(name));
      if (field && field.value.trim()) data.append(field.name, field.value.trim());
    });
  }

  return {fillList: fillList, appendFields: appendFields};
})();
