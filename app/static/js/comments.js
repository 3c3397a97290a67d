/* Comments: let htmx swap the answers our comment routes mark as swappable errors (form errors with 400,
   refusals with 403, rate limits with 429), so they appear inline instead of being dropped. Every other
   error response keeps htmx's default handling. No inline code is needed (CSP: script-src 'self'). */
document.addEventListener("htmx:beforeSwap", function (evt) {
  var xhr = evt.detail.xhr;
  if (xhr && xhr.status >= 400 && xhr.status < 500 && xhr.getResponseHeader("X-Comments-Swap") === "1") {
    evt.detail.shouldSwap = true;
    evt.detail.isError = false;
  }
});
