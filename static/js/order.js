// 受注入力: product look-up while typing (↑/↓/Enter), Enter moves on (code → 個数 → next line;
// the fields below: next field, on the last one 入力確認), Ctrl+Delete removes a line,
// Esc answers いいえ in a confirmation. The form re-renders itself through htmx on every change;
// what the operator types while that runs is kept.
(function () {
  "use strict";
  if (window.__yebisuOrder) return;
  window.__yebisuOrder = true;

  var list = null; // the suggestion list, outside the re-rendered form
  var listFor = ""; // id of the code field it belongs to
  var timer = 0;
  var seq = 0;
  var sent = null; // values (by id) sent with the running re-render
  var keep = null; // what the operator typed meanwhile
  var pendingFocus = ""; // field to focus once the re-render has it

  function byId(id) { return id ? document.getElementById(id) : null; }
  function orderForm() { return byId("order-form"); }
  function has(el, cls) { return !!(el && el.classList && el.classList.contains(cls)); }
  function lineOf(el) { return parseInt(el.getAttribute("data-line"), 10); }
  function inForm(el) { return !!(el && el.closest && el.closest("#order-form")); }

  function focusField(el) {
    if (!el) return;
    el.focus();
    if (el.tagName === "INPUT" && el.type !== "radio" && el.type !== "checkbox") el.select();
  }
  function recalc(el) {
    if (el && el.isConnected) el.dispatchEvent(new Event("change", { bubbles: true }));
  }

  // --- suggestions ------------------------------------------------------------------------
  function ensureList() {
    if (list && list.isConnected) return list;
    list = document.createElement("ul");
    list.id = "order-suggest";
    list.className = "order-suggest";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "商品の候補");
    list.hidden = true;
    list.addEventListener("mousedown", function (event) {
      event.preventDefault(); // keep the focus in the code field
      var option = event.target.closest('[role="option"]');
      if (option) pick(byId(listFor), option);
    });
    document.body.appendChild(list);
    return list;
  }
  function options() { return list ? list.querySelectorAll('[role="option"]') : []; }
  function activeIndex() {
    var opts = options();
    for (var i = 0; i < opts.length; i++) {
      if (opts[i].getAttribute("aria-selected") === "true") return i;
    }
    return -1;
  }
  function highlight(i) {
    var opts = options();
    if (!opts.length) return;
    i = (i + opts.length) % opts.length;
    for (var k = 0; k < opts.length; k++) {
      opts[k].setAttribute("aria-selected", k === i ? "true" : "false");
    }
    var input = byId(listFor);
    if (input) input.setAttribute("aria-activedescendant", opts[i].id);
    opts[i].scrollIntoView({ block: "nearest" });
  }
  function hideList() {
    clearTimeout(timer);
    seq++;
    if (!list) return;
    var input = byId(listFor);
    if (input) {
      input.setAttribute("aria-expanded", "false");
      input.removeAttribute("aria-activedescendant");
    }
    list.hidden = true;
    list.innerHTML = "";
    list.removeAttribute("data-q");
    listFor = "";
  }
  function place(input) {
    var r = input.getBoundingClientRect();
    list.style.left = r.left + window.scrollX + "px";
    list.style.top = r.bottom + window.scrollY + 2 + "px";
    list.style.minWidth = Math.max(r.width, 360) + "px";
  }
  function showList(input, html, q) {
    ensureList();
    list.innerHTML = html;
    if (!options().length) { hideList(); return; }
    list.setAttribute("data-q", q);
    listFor = input.id;
    list.hidden = false;
    place(input);
    input.setAttribute("aria-expanded", "true");
    highlight(0);
  }
  // The list shows the suggestions for exactly what is in the field now.
  function listCurrent(input) {
    return !!(list && !list.hidden && listFor === input.id &&
      list.getAttribute("data-q") === input.value.trim() && options().length);
  }
  function suggest(input) {
    clearTimeout(timer);
    var q = input.value.trim();
    var form = orderForm();
    if (!q || !form) { hideList(); return; }
    var received = byId("order-received");
    var url = form.getAttribute("data-suggest") + "?q=" + encodeURIComponent(q) +
      (received ? "&on=" + encodeURIComponent(received.value) : "");
    var id = input.id;
    timer = setTimeout(function () {
      var mine = ++seq;
      fetch(url, { credentials: "same-origin", headers: { "HX-Request": "true" } })
        .then(function (r) { return r.ok ? r.text() : ""; })
        .then(function (html) {
          var current = byId(id);
          if (mine !== seq || !current || current !== document.activeElement) return;
          if (current.value.trim() !== q) return;
          showList(current, html, q);
        })
        .catch(function () { /* the list is a convenience; the server resolves codes too */ });
    }, 120);
  }
  function pick(input, option) {
    if (!input || !option) return;
    input.value = option.getAttribute("data-code");
    hideList();
    recalc(input);
    focusField(byId("line-" + lineOf(input) + "-qty"));
  }

  // --- lines and fields -------------------------------------------------------------------
  // The code field of the line after line i; an empty line is added when there is none yet
  // (the server renders the same empty line on its next re-render).
  function nextLineCode(i) {
    var code = byId("line-" + (i + 1) + "-code");
    if (code) return code;
    var tpl = byId("order-line-template");
    var body = byId("order-lines");
    if (!tpl || !body) return null;
    var holder = document.createElement("tbody");
    holder.innerHTML = tpl.innerHTML.replace(/__i__/g, String(i + 1));
    var row = holder.querySelector("tr");
    if (!row) return null;
    body.appendChild(row);
    if (window.htmx) window.htmx.process(row);
    return byId("line-" + (i + 1) + "-code");
  }
  function navFields() {
    var form = orderForm();
    if (!form) return [];
    return Array.prototype.filter.call(form.querySelectorAll("[data-nav]"), function (el) {
      if (el.disabled || el.type === "hidden" || !el.getClientRects().length) return false;
      if (el.type === "radio") {
        var checked = form.querySelector('input[type="radio"][name="' + el.name + '"]:checked');
        return checked ? el === checked : el === form.querySelector('[name="' + el.name + '"]');
      }
      return true;
    });
  }
  function nextField(el) {
    var fields = navFields();
    var i = -1;
    for (var k = 0; k < fields.length; k++) {
      if (fields[k] === el || (el.type === "radio" && fields[k].name === el.name)) { i = k; break; }
    }
    if (i < 0) return;
    if (i + 1 < fields.length) focusField(fields[i + 1]);
    else clickPrimary();
  }
  function clickPrimary() {
    var button = byId("order-f1");
    if (button) button.click();
  }
  function hasProducts() {
    return !!document.querySelector("#order-lines .line-name .badge, #order-lines .line-amount:not(:empty)");
  }
  function removeLine(el) {
    var row = el.closest("tr.order-line");
    var button = row && row.querySelector(".line-remove");
    if (!button) return;
    pendingFocus = "line-" + lineOf(el) + "-code";
    button.click();
  }

  document.addEventListener("keydown", function (event) {
    if (event.isComposing || event.keyCode === 229) return; // the IME is converting
    var entry = byId("order-entry");
    if (!entry) return;
    var t = event.target;
    if (entry.getAttribute("data-view") !== "form") {
      if (event.key === "Escape" && byId("order-back")) {
        event.preventDefault();
        byId("order-back").click();
      } else if (event.key === "Enter" && event.repeat) {
        event.preventDefault(); // a held Enter must not answer はい unread
      }
      return;
    }
    if (!inForm(t)) return;
    var plain = !event.altKey && !event.ctrlKey && !event.metaKey && !event.shiftKey;
    if (event.key === "Delete" && event.ctrlKey && t.hasAttribute("data-line")) {
      event.preventDefault();
      removeLine(t);
      return;
    }
    if (has(t, "line-code")) {
      var open = list && !list.hidden && listFor === t.id;
      if ((event.key === "ArrowDown" || event.key === "ArrowUp") && open) {
        event.preventDefault();
        highlight(activeIndex() + (event.key === "ArrowDown" ? 1 : -1));
        return;
      }
      if (event.key === "Escape" && open) {
        event.preventDefault();
        hideList();
        return;
      }
      if (event.key === "Enter" && plain) {
        event.preventDefault();
        if (listCurrent(t)) {
          pick(t, options()[Math.max(0, activeIndex())]);
        } else if (t.value.trim()) {
          hideList();
          focusField(byId("line-" + lineOf(t) + "-qty")); // the server resolves the code
        } else if (hasProducts()) {
          hideList();
          focusField(navFields()[0]); // an empty line: on to the delivery fields
        }
      }
      return;
    }
    if (event.key !== "Enter" || !plain) return;
    if (has(t, "line-qty") || has(t, "line-price")) {
      event.preventDefault();
      var i = lineOf(t);
      var code = byId("line-" + i + "-code");
      if (code && !code.value.trim()) { focusField(navFields()[0]); return; }
      focusField(nextLineCode(i)); // leaving the field re-renders when it changed
      return;
    }
    if (t.hasAttribute("data-nav") && t.tagName !== "TEXTAREA" && t.tagName !== "BUTTON") {
      event.preventDefault();
      nextField(t);
    }
  });

  // A doubled Enter or F1 must not answer はい before the confirmation could be read: a
  // question (入力確認, 再注文) answers only after a moment, whether it came by htmx or as a
  // whole page (a reload, or a link followed before htmx had bound it).
  function armIfAsking() {
    var entry = byId("order-entry");
    var view = entry && entry.getAttribute("data-view");
    if (view !== "confirm" && view !== "reorder") return;
    entry.setAttribute("data-armed", "0");
    setTimeout(function () { entry.setAttribute("data-armed", "1"); }, 400);
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", armIfAsking);
  } else {
    armIfAsking();
  }
  document.addEventListener("click", function (event) {
    var entry = byId("order-entry");
    var yes = event.target.closest && event.target.closest("#order-f1");
    if (!yes || !entry) return;
    if (entry.getAttribute("data-armed") === "0") {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  document.addEventListener("input", function (event) {
    var t = event.target;
    if (has(t, "line-code") && inForm(t)) suggest(t);
  });

  document.addEventListener("focusout", function (event) {
    var t = event.target;
    if (!inForm(t)) return;
    if (has(t, "line-code")) {
      var id = t.id;
      setTimeout(function () {
        var a = document.activeElement;
        if (listFor === id && !(a && a.id === id)) hideList();
      }, 0);
    }
    if (t.getAttribute("data-dirty")) {
      t.removeAttribute("data-dirty");
      recalc(t); // typed during a re-render: the browser will not report it as changed
    }
  });

  // --- htmx: keep typing across re-renders, answer 400 with the form, move the cursor ---------
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = orderForm();
    var elt = event.detail && event.detail.elt;
    if (!form || !elt || !(elt === form || form.contains(elt))) return;
    sent = {};
    var inputs = form.querySelectorAll("input[id]");
    for (var k = 0; k < inputs.length; k++) sent[inputs[k].id] = inputs[k].value;
  });
  document.addEventListener("htmx:beforeSwap", function (event) {
    var target = event.detail.target;
    if (!target || target.id !== "order-entry") return;
    keep = null;
    var a = document.activeElement;
    if (!a || !a.id || a.tagName !== "INPUT" || a.type === "radio" || !inForm(a)) return;
    var before = sent && Object.prototype.hasOwnProperty.call(sent, a.id) ? sent[a.id] : a.defaultValue;
    keep = {
      id: a.id,
      value: a.value,
      typed: a.value !== before,
      start: a.selectionStart,
      end: a.selectionEnd
    };
  });
  // htmx puts the cursor back into the field of the same id; keep what was typed meanwhile
  // and the selection (a selected 個数 stays selected, so typing replaces it).
  document.addEventListener("htmx:afterSwap", function () {
    if (!keep) return;
    var el = byId(keep.id);
    if (el && el.tagName === "INPUT" && inForm(el)) {
      if (keep.typed && el.value !== keep.value) {
        el.value = keep.value;
        el.setAttribute("data-dirty", "1");
      }
      if (el === document.activeElement && keep.start !== null) {
        try { el.setSelectionRange(keep.start, keep.end); } catch (e) { /* not a text field */ }
      }
    }
    keep = null;
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var settled = event.target;
    var entry = byId("order-entry");
    if (settled && entry && (settled === entry || settled.contains(entry))) armIfAsking();
    if (pendingFocus) {
      var el = byId(pendingFocus);
      if (el) { pendingFocus = ""; focusField(el); }
    }
    if (listFor) {
      var input = byId(listFor);
      if (input && input === document.activeElement && list) place(input);
      else hideList();
    }
  });
})();
