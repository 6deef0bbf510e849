// Task and request pages, live. Whenever the request changes (an event from static/js/live.js,
// or the connection coming back after events may have been missed), the page's whole
// state-dependent part (#live-page: status line, current steps, decision card and actions,
// waiting on, diagram, history) is fetched again as ONE server-rendered fragment (the page's
// own URL with HX-Request) and put in place, so no part of the page can contradict another.
// What the person is typing survives: a field they touched, or the one that has the focus,
// is kept as it is (value, caret and all) in place of its fresh twin; text typed in a field
// that no longer exists (someone else decided the task meanwhile) is kept in a "Not sent"
// box above the page, and the page says who settled the task.
(function () {
  "use strict";
  const root = document.getElementById("live-page");
  if (!root) return;
  const instanceId = Number(root.dataset.watchInstance);
  const FIELDS = "input:not([type=hidden]), textarea, select";
  let timer = null;
  let running = false;
  let again = false;
  let offline = false;

  function fieldKey(field) {
    const form = field.closest("form");
    const scope = form ? form.getAttribute("action") || form.id : "";
    return `${scope}|${field.name || field.id}`;
  }

  function touched(field) {
    if (field.type === "checkbox" || field.type === "radio") {
      return field.checked !== field.defaultChecked;
    }
    if (field.tagName === "SELECT") {
      return Array.from(field.options).some((option) => option.selected !== option.defaultSelected);
    }
    return field.value !== field.defaultValue;
  }

  function labelOf(field) {
    const label = field.id && root.querySelector(`label[for="${CSS.escape(field.id)}"]`);
    return label ? label.textContent.trim() : field.name || "Text";
  }

  function caret(field) {
    try {
      return [field.selectionStart, field.selectionEnd];
    } catch (e) {
      return null; // inputs without a text selection (number, date...)
    }
  }

  // Move the fields the person is using from the old part into the fresh one; return the
  // typed text that has nowhere to go.
  function keepTyping(fresh) {
    const twins = new Map();
    fresh.querySelectorAll(FIELDS).forEach((field) => twins.set(fieldKey(field), field));
    const active = document.activeElement;
    const focus = active && root.contains(active) ? { field: active, caret: caret(active) } : null;
    const lost = [];
    root.querySelectorAll(FIELDS).forEach((field) => {
      if (field !== active && !touched(field)) return;
      const twin = twins.get(fieldKey(field));
      if (twin) {
        twin.replaceWith(field);
      } else if (
        (field.tagName === "TEXTAREA" || field.type === "text") &&
        field.value.trim()
      ) {
        lost.push({ label: labelOf(field), value: field.value });
      }
    });
    return { focus, lost };
  }

  function keepUnsent(lost) {
    let box = document.getElementById("unsent");
    if (!box) {
      box = document.createElement("section");
      box.id = "unsent";
      box.className = "card card-hint";
      const title = document.createElement("h2");
      title.textContent = "Not sent";
      const hint = document.createElement("p");
      hint.textContent = "The form closed before you sent this; your text is kept here to copy.";
      box.append(title, hint);
      root.before(box);
    }
    lost.forEach(({ label, value }) => {
      const area = document.createElement("textarea");
      area.value = value;
      area.rows = 3;
      area.setAttribute("aria-label", `${label} (not sent)`);
      area.dataset.unsent = "";
      box.appendChild(area);
    });
  }

  function tell(text) {
    const note = document.getElementById("live-note");
    if (!note || !text) return;
    note.textContent = text;
    note.hidden = false;
  }

  function taskWasLive() {
    const card = root.querySelector("[data-task-live]");
    return card ? card.dataset.taskLive === "true" : null;
  }

  async function refresh() {
    if (running) {
      again = true;
      return;
    }
    running = true;
    try {
      const response = await fetch(window.location.pathname + window.location.search, {
        headers: { "HX-Request": "true" },
        credentials: "same-origin",
      });
      if (!response.ok) {
        tell("This page can no longer follow the request; reload it.");
        return;
      }
      const fresh = document.createElement("div");
      fresh.innerHTML = await response.text();
      const wasLive = taskWasLive();
      const { focus, lost } = keepTyping(fresh);
      root.replaceChildren(...fresh.childNodes);
      if (focus && root.contains(focus.field)) {
        focus.field.focus({ preventScroll: true });
        if (focus.caret) {
          try {
            focus.field.setSelectionRange(focus.caret[0], focus.caret[1]);
          } catch (e) {
            /* not a text field */
          }
        }
      }
      if (lost.length) keepUnsent(lost);
      const card = root.querySelector("[data-task-live]");
      if (wasLive && card && card.dataset.taskLive === "false") tell(card.dataset.settled);
      if (window.htmx) window.htmx.process(root);
    } catch (e) {
      // The network or the server: the next event (or the reconnection) tries again.
    } finally {
      running = false;
      if (again) {
        again = false;
        soon();
      }
    }
  }

  // One change is often several events (a decision, the move, a new task): one fetch.
  function soon() {
    clearTimeout(timer);
    timer = setTimeout(refresh, 150);
  }

  document.addEventListener("signoff:event", (e) => {
    const event = e.detail || {};
    if (event.instance === instanceId) soon();
  });
  document.addEventListener("signoff:live", (e) => {
    const status = (e.detail || {}).status;
    if (status === "offline") offline = true;
    if (status === "online" && offline) {
      offline = false;
      soon(); // events sent while offline are not replayed: read the page again
    }
  });
})();
