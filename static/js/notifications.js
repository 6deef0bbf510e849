// The notifications page: new notifications appear at the top of the list as they arrive
// (static/js/live.js).
(function () {
  "use strict";
  document.addEventListener("signoff:notification", function (event) {
    var item = event.detail;
    var list = document.getElementById("notification-list");
    if (!list) {
      list = document.createElement("ul");
      list.className = "notification-list";
      list.id = "notification-list";
      var card = document.getElementById("notification-card");
      card.replaceChildren(list);
    }
    if (list.querySelector('[data-notification-id="' + item.id + '"]')) return;
    var row = document.createElement("li");
    row.className = "notification notification-unread";
    row.dataset.notificationId = item.id;
    var body = document.createElement("div");
    body.className = "notification-body";
    var link = document.createElement("a");
    link.className = "notification-link";
    link.href = item.url;
    link.textContent = item.text;
    link.addEventListener("click", function () { window.signoffLive.markRead([item.id]); });
    var meta = document.createElement("div");
    meta.className = "notification-meta";
    meta.textContent = "just now";
    body.append(link, meta);
    row.append(body);
    list.prepend(row);
  });
})();
