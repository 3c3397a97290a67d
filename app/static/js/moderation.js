/* Moderation: let htmx swap form errors (400) that our moderation routes mark with X-Moderation-Swap, so the
   messages appear next to the fields instead of being dropped. Without JavaScript the forms post normally. */
document.addEventListener("htmx:beforeSwap", function (evt) {
  var xhr = evt.detail.xhr;
  if (xhr && xhr.status === 400 && xhr.getResponseHeader("X-Moderation-Swap") === "1") {
    evt.detail.shouldSwap = true;
    evt.detail.isError = false;
  }
});
