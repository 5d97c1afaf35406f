"""The one security-header policy: what CloudFront adds to every response (page and ``/api/*``)
and ``imagerec serve`` adds to every response too.

CloudFront cannot import Python, so ``template.yaml``'s ``SecurityHeadersPolicy`` restates it
with the stack's upload bucket in ``connect-src`` (the page POSTs large photos straight to S3);
``tests/integration/test_template.py`` renders that policy for a stack and proves it equal to
``security_headers(upload_origins(bucket, region))``, byte for byte. ``imagerec serve`` stores
uploads on its own origin, or, with ``IMAGEREC_UPLOAD_BUCKET``, adds that bucket the same way.
``scripts/smoke.py`` checks a deployed page against it. This module is plain data and functions
with no imports, so the smoke test can read it without the app's dependencies.

HSTS and ``upgrade-insecure-requests`` are harmless on ``http://127.0.0.1``: browsers ignore
HSTS received over plain HTTP (RFC 6797 §8.1) and treat loopback as potentially trustworthy,
so nothing is upgraded there.
"""


def upload_origins(bucket: str, region: str, url_suffix: str = "amazonaws.com") -> tuple[str, ...]:
    """An S3 bucket's own origins: the regional one, and the global one boto3 signs for in
    us-east-1. The template's ``!Sub`` spells these two."""
    return (f"https://{bucket}.s3.{region}.{url_suffix}", f"https://{bucket}.s3.{url_suffix}")


def content_security_policy(upload_origins: tuple[str, ...] = ()) -> str:
    """Only this origin, plus blob:/data: images for the page's previews of the chosen file,
    and the upload bucket's origins for the page's POSTs, when there is one."""
    connect = " ".join(("'self'", *upload_origins))
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
        f"connect-src {connect}; font-src 'self'; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'; upgrade-insecure-requests"
    )


def security_headers(upload_origins: tuple[str, ...] = ()) -> dict[str, str]:
    return {
        "Content-Security-Policy": content_security_policy(upload_origins),
        "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "strict-origin-when-cross-origin",
        "Permissions-Policy": "geolocation=(), microphone=(), payment=(), usb=()",
        "Cross-Origin-Opener-Policy": "same-origin",
    }


# The policy with uploads on the page's own origin (imagerec serve's local store).
CONTENT_SECURITY_POLICY = content_security_policy()
SECURITY_HEADERS = security_headers()
