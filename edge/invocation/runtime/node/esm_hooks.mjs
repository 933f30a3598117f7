// edgelab: NODE_PATH for ES modules, registered by shim.cjs with module.register() when a function has layers.
//
// Lambda resolves bare ES-module specifiers (`import x from "pkg"`) through the NODE_PATH folders since Node.js 18
// ("Node.js 18.x runtime now available in AWS Lambda", AWS Compute Blog); plain Node.js ignores NODE_PATH for
// ES modules. This hook lets Node's own resolver run first and, only when a bare specifier is not found, retries
// it as if it were imported from inside each NODE_PATH folder, in order (the resolver then looks in that folder,
// which is itself a node_modules directory, and its parents).

import { pathToFileURL } from "node:url";

let folders = [];

export async function initialize(data) {
  folders = Array.isArray(data && data.folders) ? data.folders : [];
}

function isBare(specifier) {
  return !(specifier.startsWith("./") || specifier.startsWith("../") || specifier.startsWith("/")
    || specifier === "." || specifier === ".." || /^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(specifier));
}

export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (!err || err.code !== "ERR_MODULE_NOT_FOUND" || !isBare(specifier)) throw err;
    for (const folder of folders) {
      try {
        return await nextResolve(specifier, { ...context, parentURL: pathToFileURL(folder + "/_edgelab_.mjs").href });
      } catch (again) {
        if (!again || again.code !== "ERR_MODULE_NOT_FOUND") throw again;
      }
    }
    throw err;
  }
}
