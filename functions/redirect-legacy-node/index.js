'use strict';
// Permanent redirects for moved pages, answered at the edge (attach to viewer-request).
// The Node.js twin of ../redirect-legacy, callback style with a string status, as AWS's examples write it.

// Exact old path -> new path.
const MOVED = {
  '/about-us.html': '/about/',
  '/contact.php': '/contact/',
  '/blog/index.php': '/blog/',
};
// Old prefix -> new prefix (the rest of the path is kept).
const MOVED_PREFIXES = [
  ['/docs/v1/', '/docs/latest/'],
  ['/old-blog/', '/blog/'],
];

function target(uri) {
  if (Object.prototype.hasOwnProperty.call(MOVED, uri)) return MOVED[uri];
  for (const [from, to] of MOVED_PREFIXES) {
    if (uri.startsWith(from)) return to + uri.slice(from.length);
  }
  return null;
}

exports.handler = (event, context, callback) => {
  const request = event.Records[0].cf.request;
  let location = target(request.uri);
  if (location === null) {
    callback(null, request);
    return;
  }
  if (request.querystring) location += `?${request.querystring}`;
  callback(null, {
    status: '301',
    statusDescription: 'Moved Permanently',
    headers: {
      location: [{ key: 'Location', value: location }],
      'cache-control': [{ key: 'Cache-Control', value: 'max-age=86400' }],
    },
  });
};
