// A CloudFront function (cloudfront-js-2.0, viewer-request): directory index rewrite, as static sites need it:
// /docs/ -> /docs/index.html, /docs -> /docs/index.html (no file extension), anything else unchanged.
async function handler(event) {
    var request = event.request;
    var uri = request.uri;
    if (uri.endsWith('/')) {
        request.uri = uri + 'index.html';
    } else if (uri.split('/').pop().indexOf('.') === -1) {
        request.uri = uri + '/index.html';
    }
    return request;
}
