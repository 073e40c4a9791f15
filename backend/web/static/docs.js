/* The API reference page (/api/docs): Swagger UI, from the static files of the flask-swagger-ui package, on this
 * backend's own OpenAPI document. A static file (not an inline script), so it runs under a strict CSP. */
(function (global) {
  "use strict";
  const node = document.getElementById("swagger-ui");
  if (!node || typeof global.SwaggerUIBundle !== "function") return;
  global.ui = global.SwaggerUIBundle({
    url: node.dataset.specUrl,
    domNode: node,
    presets: [global.SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: false,           // its links sit inside the operations' toggle buttons (nested controls)
    docExpansion: "list",         // every operation listed, each opened on demand
    defaultModelsExpandDepth: 0,  // the schemas section starts folded
    displayRequestDuration: true,
    filter: true,                 // a box that narrows the list by tag
    validatorUrl: null,           // the default would send the document to an online validator
    requestInterceptor(request) {
      // The token the other pages keep (api.js), unless the user authorized with another one here.
      const token = global.api && typeof global.api.getToken === "function" ? global.api.getToken() : "";
      if (token && !request.headers.Authorization) request.headers.Authorization = `Bearer ${token}`;
      return request;
    },
  });

  // Swagger UI leaves some fields without a name (the request body editor, parameter inputs, media type
  // selects): give each one from its context, so screen readers say what it is.
  function fieldName(field) {
    if (field.closest(".body-param")) return "Request body (JSON)";
    const row = field.closest("tr[data-param-name]");
    if (row) return `${row.dataset.paramName} (${row.dataset.paramIn} parameter)`;
    if (field.closest(".response-control-media-type")) return "Response media type";
    if (field.closest(".content-type-wrapper, .body-param-content-type")) return "Request media type";
    return field.getAttribute("placeholder") || "";
  }

  function nameFields() {
    // code blocks (curl command, bodies) scroll: keyboard users need to reach them to scroll
    for (const block of node.querySelectorAll("pre:not([tabindex])")) block.tabIndex = 0;
    for (const field of node.querySelectorAll("textarea, input, select")) {
      if (field.labels && field.labels.length && field.labels[0].textContent.trim()) continue;
      if (field.getAttribute("aria-label")) continue;
      const name = fieldName(field);
      if (name) field.setAttribute("aria-label", name);
    }
  }

  let pending = false;
  new MutationObserver(() => {
    if (pending) return;
    pending = true;
    global.requestAnimationFrame(() => { pending = false; nameFields(); });
  }).observe(node, {childList: true, subtree: true});
})(window);
