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
    deepLinking: true,            // /api/docs#/tokenize/post-api-tokenize opens that operation
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
})(window);
