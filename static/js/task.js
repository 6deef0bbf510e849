// Task and request pages, live: watch the request (static/js/live.js) and, when it changes,
// refresh who it waits on and the history; when this task is settled by someone else, say so
// and replace the decision form with the page's account of who decided.
(function () {
  "use strict";
  const page = document.querySelector("[data-watch-instance]");
  if (!page) return;
  const instanceId = Number(page.dataset.watchInstance);
  const taskId = Number(page.dataset.task || 0);
  const me = Number(page.dataset.user || 0);
  const SETTLING = new Set([
    "task.decided", "task.claimed", "task.delegated", "task.reassigned",
    "task.escalated", "task.cancelled", "instance.completed",
  ]);

  async function refresh(ids) {
    const response = await fetch(window.location.href);
    if (!response.ok) return;
    const fresh = new DOMParser().parseFromString(await response.text(), "text/html");
    ids.forEach((id) => {
      const old = document.getElementById(id);
      const replacement = fresh.getElementById(id);
      if (old && replacement) old.replaceWith(replacement);
    });
  }

  function settlesThisTask(event) {
    if (!taskId) return false;
    if (event.topic === "instance.completed") return true;
    if (event.topic === "task.cancelled") return true;
    return event.task === taskId && SETTLING.has(event.topic);
  }

  document.addEventListener("signoff:event", (e) => {
    const event = e.detail || {};
    if (event.instance !== instanceId) return;
    const ids = ["waiting", "timeline", "status"];
    if (settlesThisTask(event) && event.actor_id !== me) {
      ids.push("decision");
      const note = document.getElementById("live-note");
      // The decision says most; a later event of the same change (the request completing)
      // does not replace it.
      if (note && (note.hidden || event.decision)) {
        const what = event.decision ? ` (${event.decision})` : "";
        note.textContent = event.actor
          ? `${event.actor} just acted on this task${what}.`
          : "This task just changed.";
        note.hidden = false;
      }
    }
    refresh(ids);
  });
})();
