"""`push vapid-keys` and the key form it prints: read back by py_vapid and pywebpush as the server will."""
from __future__ import annotations

import base64
import importlib
import json

import pytest
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from mfa.webpush_keys import generate_vapid_private_key, vapid_public_key

# Imported by name: neither package ships type information, and the test only needs their behaviour.
py_vapid = importlib.import_module("py_vapid")
pywebpush = importlib.import_module("pywebpush")

ENDPOINT = "https://fcm.googleapis.com/fcm/send/device-token"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def raw_point(public_key: ec.EllipticCurvePublicKey) -> str:
    return b64url(public_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint))


@pytest.fixture
def generated(app):
    result = app.test_cli_runner().invoke(args=["push", "vapid-keys"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("WEBPUSH_VAPID_PRIVATE_KEY=")
    private_key = lines[0].removeprefix("WEBPUSH_VAPID_PRIVATE_KEY=")
    printed_public = lines[1].rsplit(": ", 1)[1]
    return result, private_key, printed_public


def test_prints_an_environment_line_and_the_public_key(generated):
    result, private_key, printed_public = generated
    assert len(private_key) == 43 and "=" not in private_key
    assert printed_public == vapid_public_key(private_key)
    assert len(b64url_decode(printed_public)) == 65 and b64url_decode(printed_public)[0] == 4
    assert result.stderr == ""
    # every other line is a comment, so the output can be appended to an environment file as it is
    assert all(line.startswith("#") for line in result.stdout.splitlines()[1:])


def test_each_run_makes_a_new_key(app):
    runner = app.test_cli_runner()
    first, second = (runner.invoke(args=["push", "vapid-keys"]).stdout.splitlines()[0] for _ in range(2))
    assert first != second


def test_py_vapid_reads_the_key_as_the_same_key_pair(generated):
    _, private_key, printed_public = generated
    vapid = py_vapid.Vapid.from_string(private_key)
    assert raw_point(vapid.public_key) == printed_public


class CapturingAdapter(requests.adapters.BaseAdapter):
    """Stands in for the push service: records the request and accepts it."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[requests.PreparedRequest] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.sent.append(request)
        response = requests.Response()
        response.status_code, response.request, response.url = 201, request, request.url
        return response

    def close(self) -> None:
        pass


def test_pywebpush_signs_with_the_printed_public_key(generated):
    _, private_key, printed_public = generated
    browser_key = ec.generate_private_key(ec.SECP256R1())
    subscription = {"endpoint": ENDPOINT,
                    "keys": {"p256dh": raw_point(browser_key.public_key()), "auth": b64url(b"sixteen byte key")}}
    adapter, session = CapturingAdapter(), requests.Session()
    session.mount("https://", adapter)

    pywebpush.webpush(subscription, data='{"type": "sign_in_request"}', vapid_private_key=private_key,
                      vapid_claims={"sub": "mailto:ops@example.org"}, requests_session=session)

    [request] = adapter.sent
    authorization = str(request.headers["Authorization"])
    token, key = authorization.removeprefix("vapid t=").split(",k=")
    assert key == printed_public
    signed, signature = token.rsplit(".", 1)
    raw = b64url_decode(signature)
    der = encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))
    public = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), b64url_decode(printed_public))
    public.verify(der, signed.encode(), ec.ECDSA(hashes.SHA256()))  # raises if another key signed
    claims = json.loads(b64url_decode(signed.split(".")[1]))
    assert claims["aud"] == "https://fcm.googleapis.com" and claims["sub"] == "mailto:ops@example.org"


def test_a_private_key_with_leading_zero_bytes_keeps_its_32_bytes(monkeypatch):
    # py_vapid tells a raw key from DER by its decoded length: a shortened scalar would be misread.
    monkeypatch.setattr(ec, "generate_private_key", lambda curve: ec.derive_private_key(7, curve))
    private_key = generate_vapid_private_key()
    assert len(b64url_decode(private_key)) == 32
    assert raw_point(py_vapid.Vapid.from_string(private_key).public_key) == vapid_public_key(private_key)
    assert vapid_public_key(private_key) == raw_point(ec.derive_private_key(7, ec.SECP256R1()).public_key())


@pytest.mark.parametrize("malformed", [
    "",
    "tooshort",
    generate_vapid_private_key() + "=",                       # padded
    generate_vapid_private_key() + "\n",                      # a stray newline
    generate_vapid_private_key()[:-1] + "+",                  # plain base64, not base64url
    "A" * 43,                                                 # zero is no private key
    "_" * 43,                                                 # above the order of the curve
    "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI...\n-----END EC PRIVATE KEY-----",  # PEM, e.g. from `vapid --gen`
])
def test_a_malformed_private_key_is_refused_with_a_clear_message(malformed):
    with pytest.raises(ValueError, match="Malformed VAPID private key.*push vapid-keys"):
        vapid_public_key(malformed)
