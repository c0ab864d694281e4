"""Web Push (RFC 8030 delivery, RFC 8291 encryption, RFC 8292 VAPID) through pywebpush.

Only to push services on WEBPUSH_ENDPOINT_HOSTS: a subscription's endpoint is a URL the device
chose, and posting wherever it points would let anyone who sets up a phone make the server send
requests into its own network. Plain http only to a loopback host listed exactly (tests, trials).
"""
from __future__ import annotations

import json
import logging
import re
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as Late

import requests
from pywebpush import WebPushException, webpush
from urllib3.util import parse_url

from mfa.push_delivery import FAILED, GONE, NOT_ALLOWED, SENT
from mfa.webpush_keys import vapid_public_key

log = logging.getLogger("mfa.push")

TIMEOUT = 5  # seconds for each connect or read (requests' own timeouts)
DEADLINE = 4  # seconds the request that started the push waits in all: a push service that trickles its
# answer byte by byte keeps only one of the sender's few threads, never the sign-in
TTL = 120  # seconds a push service keeps an undelivered message: the request's own lifetime
LOOPBACK = ("127.0.0.1", "localhost", "::1")
# An endpoint as browsers give it: a lower-case host (or bracketed IPv6), an optional port, and a path and
# query of URL characters only. Nothing else gets as far as a parser: two URL parsers that disagree on a
# backslash or a stray character would check one host and connect to another.
ENDPOINT = re.compile(r"(https?)://([a-z0-9.-]+|\[[0-9a-f:]+\])(?::([0-9]{1,5}))?(/[A-Za-z0-9._~!$&'()*+,;=:@%/?-]*)?")
VAPID_SUBJECT = re.compile(r"mailto:[^@\s]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|https://[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+(/\S*)?")


class _NoRedirects(requests.Session):
    """A push service answers; it never sends us elsewhere (a redirect could point anywhere)."""

    def request(self, method, url, *args, **kwargs):
        kwargs["allow_redirects"] = False
        return super().request(method, url, *args, **kwargs)


class WebPushSender:
    def __init__(self, private_key: str, subject: str, endpoint_hosts: tuple[str, ...]):
        self._session = _NoRedirects()
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="webpush")
        self._private_key = private_key
        self._claims = {"sub": subject}
        self._hosts = endpoint_hosts
        self.public_key: str | None = vapid_public_key(private_key)

    def accepts_endpoint(self, endpoint: str) -> bool:
        found = ENDPOINT.fullmatch(endpoint) if len(endpoint) <= 1000 else None
        if found is None:
            return False
        scheme, host, port = found.group(1), found.group(2).strip("[]"), found.group(3)
        try:
            agreed = parse_url(endpoint).host == found.group(2)  # what requests will connect to
        except ValueError:
            return False
        listed = host in self._hosts or any(h.startswith(".") and host.endswith(h) for h in self._hosts)
        if not (agreed and listed):
            return False
        if scheme == "https":
            return port in (None, "443")  # push services listen on 443: no other port of theirs is asked for
        return host in LOOPBACK  # plain http: only a loopback host listed exactly (tests, trials)

    def close(self) -> None:
        """Let the pushes under way finish, then close their connections."""
        self._pool.shutdown(wait=True)
        self._session.close()

    def send(self, subscription: dict[str, object], payload: dict[str, object]) -> str:
        endpoint = subscription.get("endpoint")
        if not isinstance(endpoint, str) or not self.accepts_endpoint(endpoint):
            return NOT_ALLOWED  # WEBPUSH_ENDPOINT_HOSTS changed since the phone subscribed
        try:
            return self._pool.submit(self._post, endpoint, subscription, payload).result(timeout=DEADLINE)
        except Late:
            log.warning("web push to %r took longer than %d s: the phone will see the request when it polls",
                        _host(endpoint), DEADLINE)
            return FAILED

    def _post(self, endpoint: str, subscription: dict[str, object], payload: dict[str, object]) -> str:
        try:
            webpush(subscription_info=subscription, data=json.dumps(payload), vapid_private_key=self._private_key,
                    vapid_claims=dict(self._claims), ttl=TTL, timeout=TIMEOUT, content_encoding="aes128gcm",
                    headers={"Urgency": "high"}, requests_session=self._session)
        except WebPushException as refused:
            status = refused.response.status_code if refused.response is not None else None
            if status in (404, 410):
                return GONE
            log.warning("web push refused by %r: HTTP %s", _host(endpoint), status)
            return FAILED
        except Exception as failure:  # never the sign-in's failure: the phone polls anyway
            log.warning("web push to %r failed: %s", _host(endpoint), type(failure).__name__)
            return FAILED
        return SENT


def _host(endpoint: str) -> str:
    found = ENDPOINT.fullmatch(endpoint)
    return found.group(2) if found else "?"
