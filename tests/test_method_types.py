"""Method types: one class per type behind the same hooks, found through one registry.

Nothing outside mfa/method_types/ branches on a type's name: a grep keeps it that way.
"""
from __future__ import annotations

import ast
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from ivr import sms_texts
from mfa import methods, phones
from mfa.errors import Unprocessable
from mfa.method_types import REGISTRY, AppCode, Call, MethodType, Text, method_type, phone_deliveries, types_where
from mfa.phone_registration import DELIVERIES, delivery_for, may_register_phone, phone_kinds_for
from models import Method, User
from models.method import METHOD_TYPES, PHONE_KINDS
from models.user import LANGUAGE_NAMES, LANGUAGES
from voice_prompts import catalogue

ROOT = Path(__file__).resolve().parent.parent
PRODUCT = ("mfa", "web", "api", "ivr", "cli", "ops", "models")
NAMES = "|".join(METHOD_TYPES)
LITERAL = rf"""["']({NAMES})["']"""
# A type name compared, tested for membership, or used as a key of a per-type table.
BRANCHES = [
    re.compile(rf"(==|!=)\s*{LITERAL}"),
    re.compile(rf"{LITERAL}\s*(==|!=)"),
    re.compile(rf"\bin\s*[(\[{{][^)\]}}]*{LITERAL}"),
    re.compile(rf"{LITERAL}\s*:\s*\S"),
]
TEMPLATE_BRANCH = re.compile(r"\.type\s*(==|!=|in\b)")
MOBILE, LANDLINE = "07400 123456", "020 7946 0123"
NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def product_files(pattern: str) -> list[Path]:
    return [p for package in PRODUCT for p in (ROOT / package).rglob(pattern)
            if "method_types" not in p.parts and "standin" not in p.parts]


def type_branches(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines()
            if not line.lstrip().startswith("#") and any(b.search(line) for b in BRANCHES)]


def test_no_product_code_branches_on_a_type_name():
    found = {f"{p.relative_to(ROOT)}: {line}" for p in product_files("*.py") for line in type_branches(p.read_text())}
    assert not found, "ask the method type (mfa/method_types) instead:\n" + "\n".join(sorted(found))


def test_no_page_branches_on_a_method_type():
    found = [str(p.relative_to(ROOT)) for p in product_files("*.html") if TEMPLATE_BRANCH.search(p.read_text())]
    assert not found, found


@pytest.mark.parametrize("line", [
    'if method.type == "totp":', 'challenge.type != "voice"', 'if "sms" == kind:',
    'if m.type in ("sms", "voice"):', 'TTL = {"sms": timedelta(minutes=5)}',
])
def test_the_grep_catches_each_shape_of_branch(line):
    assert type_branches(line) == [line]


def test_the_grep_lets_class_constants_and_the_stored_list_through():
    assert type_branches('select(Challenge).where(Challenge.type == Call.name)') == []
    assert type_branches('METHOD_TYPES = ("voice", "sms", "totp", "push")') == []


def test_the_registry_finds_each_type_by_name_and_by_method():
    assert set(REGISTRY) <= set(METHOD_TYPES)
    for name, mtype in REGISTRY.items():
        assert mtype.name == name
        assert method_type(name) is mtype
        assert method_type(Method(type=name)) is mtype


def test_a_stored_type_this_server_does_not_offer_is_refused_as_not_available():
    with pytest.raises(Unprocessable) as refused:
        method_type("fax")  # a type a later release may add, met by this one in a shared database
    assert refused.value.code == "method_not_available"


@pytest.mark.parametrize("mtype", list(REGISTRY.values()), ids=list(REGISTRY))
def test_each_type_fills_every_hook(mtype: MethodType):
    assert isinstance(mtype, MethodType)
    assert mtype.label and mtype.sign_in_mode
    verify_page = (ROOT / "web/templates/verify.html").read_text()
    assert f'"{mtype.sign_in_mode}"' in verify_page  # the page has a part for it
    assert mtype.choice(Method(type=mtype.name, label="+44 •••• ••3456"))
    if mtype.issues_challenge:
        assert mtype.challenge_ttl is not None and mtype.challenge_ttl > timedelta(0)
        if mtype.approved_on_device:  # it waits for the phone app, which fetches it (and gets a Web Push)
            assert mtype.sign_in_mode and not mtype.phone_kinds
        else:
            assert type(mtype).deliver is not MethodType.deliver  # it can send what it issues
    else:  # nothing is sent: a typed code is checked against the method itself
        assert mtype.takes_code_without_challenge
        assert type(mtype).check_code is not MethodType.check_code
    assert set(mtype.phone_kinds) <= set(PHONE_KINDS)


def test_each_lifetime_is_one_constant():
    assert Text.challenge_ttl == timedelta(minutes=5) and Call.challenge_ttl == timedelta(minutes=2)
    assert AppCode.challenge_ttl is None
    assert sms_texts.CODE_TTL_MINUTES == Text.code_lifetime_minutes() == 5
    assert "It expires in 5 minutes." in sms_texts.code_message("Sign-in", "123456", "example.org", "en-GB")
    assert "5 minutes" not in (ROOT / "web/templates/verify.html").read_text()  # the page asks the type


def test_phone_deliveries_are_the_types_a_phone_registers_with():
    assert {t.name for t in phone_deliveries()} == set(DELIVERIES) == {Text.name, Call.name}
    assert types_where(ends_by_hanging_up=True) == (Call.name,)
    assert types_where(takes_code_without_challenge=True) == (AppCode.name,)


@pytest.mark.parametrize("number, kind, texts, calls", [
    (MOBILE, "mobile", True, True),
    (MOBILE, "alternate", True, True),
    (MOBILE, "office", False, True),
    (LANDLINE, "mobile", False, True),
    (LANDLINE, "office", False, True),
])
def test_texts_need_a_mobile_and_calls_ring_any_phone(number, kind, texts, calls):
    phone = phones.parse(number)
    assert method_type(Text.name).accepts_phone(phone, kind) is texts
    assert method_type(Call.name).accepts_phone(phone, kind) is calls


def test_a_text_to_a_landline_is_refused_with_its_own_reason():
    with pytest.raises(Unprocessable) as refused:
        method_type(Text.name).check_phone(phones.parse(LANDLINE), "mobile")
    assert refused.value.code == "sms_needs_mobile"


def test_an_office_phone_is_called_whatever_was_chosen():
    assert delivery_for("office", Text.name) == Call.name
    assert delivery_for("mobile", Text.name) == Text.name
    assert delivery_for("mobile", Call.name) == Call.name


def test_a_hybrid_mailbox_cannot_register_an_office_phone():
    assert phone_kinds_for(hybrid=False) == PHONE_KINDS
    assert "office" not in phone_kinds_for(hybrid=True)
    assert may_register_phone("office", hybrid=False) and not may_register_phone("office", hybrid=True)
    assert not may_register_phone("app", hybrid=False)


def phone_method(type_: str, kind: str = "mobile", default: bool = False) -> Method:
    return Method(type=type_, kind=kind, label="+44 •••• ••3456", verified_at=NOW, is_default=default)


def test_slots_one_app_and_one_phone_of_each_kind():
    app = Method(type=AppCode.name, label=AppCode.label, verified_at=NOW)
    assert methods.same_slot(app, Method(type=AppCode.name, label=AppCode.label))
    assert not methods.same_slot(app, phone_method(Text.name))
    assert methods.same_slot(phone_method(Text.name), phone_method(Call.name))
    assert not methods.same_slot(phone_method(Call.name, "mobile"), phone_method(Call.name, "office"))


def test_a_proven_mobile_can_be_used_the_other_way_too():
    number = phones.parse(MOBILE).e164
    assert methods._twin_types(phone_method(Text.name), number) == [Call.name]
    assert methods._twin_types(phone_method(Call.name), number) == [Text.name]
    assert methods._twin_types(phone_method(Call.name, "office"), number) == []
    assert methods._twin_types(phone_method(Call.name), phones.parse(LANDLINE).e164) == []


def test_the_default_method_is_the_chosen_one_else_the_first():
    first, chosen = phone_method(Call.name), phone_method(Text.name, default=True)
    assert methods.default_method(User(methods=[first, chosen])) is chosen
    chosen.is_default = False
    assert methods.default_method(User(methods=[first, chosen])) is first


def test_the_registered_app_is_found_among_verified_methods_only():
    app = Method(type=AppCode.name, label=AppCode.label, verified_at=NOW)
    pending = Method(type=AppCode.name, label=AppCode.label)
    assert methods.registered_app(User(methods=[phone_method(Text.name), pending, app])) is app
    assert methods.registered_app(User(methods=[pending])) is None


def test_each_type_words_its_choice():
    assert REGISTRY[Call.name].choice(phone_method(Call.name)) == "Call +44 •••• ••3456"
    assert REGISTRY[Text.name].choice(phone_method(Text.name)) == "Text +44 •••• ••3456"
    assert "authenticator app" in REGISTRY[AppCode.name].choice(Method(type=AppCode.name, label=AppCode.label))


def test_one_list_of_languages():
    assert catalogue.LANGUAGES is LANGUAGES == tuple(LANGUAGE_NAMES)
    assert set(sms_texts.CODE_MESSAGE) == set(LANGUAGES)
    for page in product_files("*.html"):  # the forms loop over LANGUAGE_NAMES
        assert not any(f'value="{code}"' in page.read_text() for code in LANGUAGES), page
    # No second copy of the list: a line naming every language (the wording tables name one per line).
    copies = [p for p in product_files("*.py") + list((ROOT / "voice_prompts").glob("*.py"))
              for line in p.read_text().splitlines() if all(f'"{code}"' in line for code in LANGUAGES)]
    assert copies == [ROOT / "models/user.py"]


def test_the_method_types_import_no_web_or_telephony_code():
    for source in (ROOT / "mfa/method_types").glob("*.py"):
        tree = ast.parse(source.read_text())
        imported = {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        assert not {m.split(".")[0] for m in imported} & {"flask", "twilio", "prometheus_client", "web", "ivr"}, source
