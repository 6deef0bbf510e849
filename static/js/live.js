/*
 * Signoff live updates (docs/notifications.md): one WebSocket per tab to /ws/notifications/.
 * Keeps the bell's unread count, shows toasts, reconnects with backoff and catches up from
 * the last notification id it saw. Reconnecting waits a random time up to a delay that doubles
 * with each failed try (1 s, 2 s, ... 30 s; "full jitter"), so that hundreds of tabs dropped at
 * once by a deploy do not come back at once; the delay starts over only once the server said
 * `ready`, so a server that accepts and then closes is not hammered either. Code 4401 (signed
 * out) stops it. Pages listen on `document` for:
 *   signoff:notification  detail = a notification (id, kind, topic, text, url, instance, task,
 *                         state, task_state, decision, outcome, actor, actor_id, created_at, ...)
 *   signoff:event         detail = a "this task/request changed" event (topic, instance, task,
 *                         state, task_status, actor, decision, ...)
 *   signoff:unread        detail = {unread}
 *   signoff:live          detail = {status: "online" | "offline"}
 * and may call window.signoffLive.watch(instanceId) to get the events of one request.
 * Plain JavaScript, no build step.
 */
(function () {
  "use strict";

  var bell = document.getElementById("signoff-bell");
  if (!bell || window.signoffLive) return;

  var MIN_DELAY = 1000;
  var MAX_DELAY = 30000;
  var PING_MS = 25000;
  var TOAST_MS = 7000;
  var CLOSE_UNAUTHENTICATED = 4401;

  var lastId = parseInt(bell.dataset.lastId || "0", 10) || 0;
  var delay = MIN_DELAY;
  var socket = null;
  var pingTimer = null;
  var retryTimer = null;
  var signedOut = false;
  var watched = new Set();
  var seenEvents = new Set();
  var seenOrder = [];
  var seenNotes = new Set();
  var noteOrder = [];

  function emit(name, detail) {
    document.dispatchEvent(new CustomEvent("signoff:" + name, { detail: detail }));
  }

  function setUnread(count) {
    if (typeof count !== "number") return;
    var badge = bell.querySelector("[data-unread-count]");
    if (badge) {
      badge.textContent = count > 99 ? "99+" : String(count);
      badge.hidden = count === 0;
    }
    bell.setAttribute("aria-label", "Notifications: " + count + " unread");
    document.querySelectorAll("[data-unread-label]").forEach(function (el) {
      el.textContent = "(" + count + " unread)";
    });
    emit("unread", { unread: count });
  }

  function setStatus(status) {
    bell.dataset.live = status;
    emit("live", { status: status });
  }

  function toast(item) {
    var box = document.getElementById("signoff-toasts");
    if (!box) return;
    // A burst of one kind in one workflow is one toast: "3 new tasks in Access request".
    var same = item.group && Array.prototype.find.call(box.children, function (el) {
      return el.dataset.group === item.group;
    });
    if (same && item.group_text) {
      var ids = same.dataset.ids.split(",").concat([String(item.id)]);
      same.dataset.ids = ids.join(",");
      var grouped = same.querySelector("a");
      grouped.textContent = item.group_text.replace("{n}", String(ids.length));
      grouped.href = "/notifications/";
      return;
    }
    var el = document.createElement("div");
    el.dataset.group = item.group || "";
    el.dataset.ids = String(item.id);
    el.className = "toast";
    var link = document.createElement("a");
    link.href = item.url || "/notifications/";
    link.textContent = item.text;
    link.addEventListener("click", function () {
      markRead(el.dataset.ids.split(",").map(Number));
    });
    var close = document.createElement("button");
    close.type = "button";
    close.setAttribute("aria-label", "Dismiss");
    close.textContent = "×";
    close.addEventListener("click", function () { el.remove(); });
    el.appendChild(link);
    el.appendChild(close);
    box.appendChild(el);
    while (box.children.length > 4) box.removeChild(box.firstChild);
    setTimeout(function () { el.remove(); }, TOAST_MS);
  }

  function csrfToken() {
    var match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function markRead(ids) {
    var body = new URLSearchParams();
    ids.forEach(function (id) { body.append("ids", String(id)); });
    return fetch(bell.dataset.readUrl, {
      method: "POST",
      credentials: "same-origin",
      headers: { "X-CSRFToken": csrfToken(), Accept: "application/json" },
      body: body,
    }).then(function (r) { return r.ok ? r.json() : null; })
      .then(function (data) { if (data) setUnread(data.unread); })
      .catch(function () {});
  }

  function send(message) {
    if (socket && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
  }

  function remember(set, order, id) {
    if (set.has(id)) return false;
    set.add(id);
    order.push(id);
    if (order.length > 500) set.delete(order.shift());
    return true;
  }

  function onNotification(item, unread) {
    if (!remember(seenNotes, noteOrder, item.id)) return;
    if (item.id > lastId) lastId = item.id;
    if (typeof unread === "number") setUnread(unread);
    toast(item);
    emit("notification", item);
  }

  function onEvent(event) {
    if (!remember(seenEvents, seenOrder, event.id)) return;
    emit("event", event);
  }

  function onMessage(raw) {
    var message;
    try { message = JSON.parse(raw.data); } catch (e) { return; }
    switch (message.type) {
      case "notification":
        onNotification(message.notification, message.unread);
        break;
      case "event":
        onEvent(message.event);
        break;
      case "unread":
        setUnread(message.unread);
        break;
      case "ready":
        delay = MIN_DELAY;  // this connection works: the next failure starts the backoff over
        setUnread(message.unread);
        if (message.more) send({ type: "catch_up", since: lastId });
        break;
      default:
        break;
    }
  }

  function url() {
    var scheme = location.protocol === "https:" ? "wss://" : "ws://";
    return scheme + location.host + bell.dataset.liveUrl + "?since=" + lastId;
  }

  function connect() {
    clearTimeout(retryTimer);
    try {
      socket = new WebSocket(url());
    } catch (e) {
      schedule();
      return;
    }
    socket.addEventListener("open", function () {
      setStatus("online");
      watched.forEach(function (id) { send({ type: "watch", instance: id }); });
      clearInterval(pingTimer);
      pingTimer = setInterval(function () { send({ type: "ping" }); }, PING_MS);
    });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", function (event) {
      clearInterval(pingTimer);
      setStatus("offline");
      socket = null;
      // Signed out (or the session expired): retrying cannot help until the page reloads.
      if (event.code === CLOSE_UNAUTHENTICATED) {
        signedOut = true;
        return;
      }
      schedule();
    });
  }

  function schedule() {
    // Full jitter: anywhere in [0, delay), so that tabs closed together spread out.
    var wait = Math.random() * delay;
    delay = Math.min(MAX_DELAY, delay * 2);
    clearTimeout(retryTimer);
    retryTimer = setTimeout(connect, wait);
  }

  window.signoffLive = {
    watch: function (instanceId) {
      instanceId = Number(instanceId);
      if (!instanceId || watched.has(instanceId)) return;
      watched.add(instanceId);
      send({ type: "watch", instance: instanceId });
    },
    unwatch: function (instanceId) {
      instanceId = Number(instanceId);
      watched.delete(instanceId);
      send({ type: "unwatch", instance: instanceId });
    },
    markRead: markRead,
    lastId: function () { return lastId; },
  };

  // A tab coming back from sleep reconnects at once rather than after its backoff.
  document.addEventListener("visibilitychange", function () {
    if (document.visibilityState === "visible" && !socket && !signedOut) {
      delay = MIN_DELAY;
      connect();
    }
  });
  // Pages declare what they show: <body data-watch-instance="42"> (or any element).
  document.querySelectorAll("[data-watch-instance]").forEach(function (el) {
    watched.add(Number(el.dataset.watchInstance));
  });

  connect();
})();
