'use strict';
// Serve /path/ and /path from /path/index.html (attach to origin-request).
// The Node.js twin of ../pretty-urls (AWS's "index.html rewrite" idiom), as an async handler.

exports.handler = async (event) => {
  const request = event.Records[0].cf.request;
  const uri = request.uri;
  if (uri.endsWith('/')) {
    request.uri = `${uri}index.html`;
  } else if (!uri.slice(uri.lastIndexOf('/') + 1).includes('.')) {
    request.uri = `${uri}/index.html`;
  }
  return request;
};
