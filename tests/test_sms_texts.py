"""Every text is one GSM-7 segment in plain words, ending with the origin-bound code line."""
from __future__ import annotations

import re

import pytest

from app import create_app
from ivr.sms_texts import CODE_MESSAGE, code_message, fits_one_gsm7_segment
from settings import SettingsError

LONGEST_SERVICE = "S" * 30


@pytest.mark.parametrize("language", sorted(CODE_MESSAGE))
@pytest.mark.parametrize("service, host", [
    ("Secure Sign-in", "127.0.0.1"),
    ("NHSmail", "mfa.nhs.example"),
    (LONGEST_SERVICE, "verify.mfa.example-health-trust.nhs.uk"),
])
def test_every_code_text_is_one_gsm7_segment(language, service, host):
    for code in ("000000", "123456", "999999"):
        body = code_message(service, code, host, language)
        assert fits_one_gsm7_segment(body), (len(body), body)
        assert body.endswith(f"\n\n@{host} #{code}")
        assert re.search(rf"\b{code}\b", body.split("\n")[0])  # the code is in the words too


def test_the_welsh_text_is_welsh():
    welsh = code_message("Secure Sign-in", "123456", "h.example", "cy-GB")
    assert welsh.startswith("Eich cod Secure Sign-in yw 123456")


@pytest.mark.parametrize("character", ["â", "ŵ", "😀", "’"])
def test_characters_outside_gsm7_would_break_the_segment(character):
    assert not fits_one_gsm7_segment("Your code is 123456" + character)


def test_a_service_name_and_host_too_long_for_one_segment_stop_start_up(app_config):
    with pytest.raises(SettingsError, match="SERVICE_NAME"):
        create_app({**app_config, "SERVICE_NAME": LONGEST_SERVICE,
                    "PUBLIC_BASE_URL": "https://" + "a" * 60 + ".example.org"})
