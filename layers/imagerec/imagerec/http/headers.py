"""The one security-header policy: what CloudFront adds to every response and ``imagerec serve``
adds to the page.

CloudFront cannot import Python, so ``template.yaml``'s ``SecurityHeadersPolicy`` restates it,
adding only the upload bucket's origins to ``connect-src`` (the page POSTs large photos straight
to S3; ``imagerec serve`` keeps uploads on its own origin);
``tests/integration/test_template.py`` proves the two equal, header for header, and
``scripts/smoke.py`` checks a deployed page against it. This module is plain data with no
imports, so the smoke test can read it without the app's dependencies.

HSTS and ``upgrade-insecure-requests`` are harmless on ``http://127.0.0.1``: browsers ignore
HSTS received over plain HTTP (RFC 6797 §8.1) and treat loopback as potentially trustworthy,
so nothing is upgraded there.
"""

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'; upgrade-insecure-requests"
)

SECURITY_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "geolocation=(), microphone=(), payment=(), usb=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
