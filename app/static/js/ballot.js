/* Ballot page enhancements; the ballot works without them (plain forms, server-side filter and ordering).
   - Filter: the theme and district selects show and hide project cards at once (the "Apply filter" button
     is only needed without JavaScript).
   - Ranked ballots: the "Up"/"Down" buttons of the summary swap two rank selects instead of reloading the
     page; htmx then refreshes the summary (the form's change trigger), and focus returns to the moved
     project's button. No inline code (CSP: script-src 'self'). */
(function () {
  "use strict";
  var form = document.querySelector("form.ballot-form");
  if (!form) {
    return;
  }
  var filterButton = form.querySelector(".filter-button");
  var count = document.getElementById("shown-count");

  function filterValue(name) {
    var select = form.querySelector('[data-filter="' + name + '"]');
    return select ? select.value : "";
  }

  function applyFilter() {
    var theme = filterValue("theme");
    var district = filterValue("district");
    var shown = 0;
    var cards = form.querySelectorAll(".project-card");
    cards.forEach(function (card) {
      var visible = (!theme || card.dataset.theme === theme) && (!district || card.dataset.district === district);
      card.hidden = !visible;
      if (visible) {
        shown += 1;
      }
    });
    if (count && count.dataset.template) {
      count.textContent = count.dataset.template.replace("{num}", shown).replace("{total}", cards.length);
    }
  }

  if (filterButton) {
    filterButton.hidden = true;
  }
  form.addEventListener("change", function (event) {
    if (event.target.matches("[data-filter]")) {
      applyFilter();
    }
  });

  var pendingFocus = null;
  form.addEventListener("click", function (event) {
    var button = event.target.closest("[data-move]");
    if (!button) {
      return;
    }
    var parts = button.dataset.move.split(":");
    var select = form.querySelector('select[name="rank-' + parts[0] + '"]');
    if (!select) {
      return; // not on the page (filtered on the server): let the form submit
    }
    event.preventDefault();
    var ranked = Array.prototype.filter.call(form.querySelectorAll("select.rank-select"), function (s) {
      return s.value !== "";
    });
    ranked.sort(function (a, b) {
      return parseInt(a.value, 10) - parseInt(b.value, 10);
    });
    var k = ranked.indexOf(select);
    var j = parts[1] === "up" ? k - 1 : k + 1;
    if (k < 0 || j < 0 || j >= ranked.length) {
      return;
    }
    var other = ranked[j];
    var value = other.value;
    other.value = select.value;
    select.value = value;
    pendingFocus = parts;
    select.dispatchEvent(new Event("change", { bubbles: true }));
  });

  document.body.addEventListener("htmx:afterSwap", function () {
    if (!pendingFocus) {
      return;
    }
    var id = pendingFocus[0];
    var target =
      document.querySelector('[data-move="' + id + ":" + pendingFocus[1] + '"]') ||
      document.querySelector('[data-move^="' + id + ':"]') ||
      document.getElementById("summary-h");
    pendingFocus = null;
    if (target) {
      target.focus();
    }
  });
})();
