"""Every setting in one table, read from the environment and checked at start-up.

A setting that is missing or malformed where it is needed stops start-up with
one line naming it. Names and defaults are the documented ones (docs/configuration.md).
"""
from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import phonenumbers
from cryptography.fernet import Fernet

from ivr.sms_texts import CODE_MESSAGE, GSM7, code_message, fits_one_gsm7_segment
from mfa import limits as limit_catalogue
from mfa.entra.profile import ENTRA_KEYS_URL, GUID, EntraConfig
from mfa.limits import Limits
from mfa.policy import CALL_APPROVALS, HASH
from models.user import ROLES
from voice_prompts.library import MODES as VOICE_PROMPT_MODES

SIMULATOR_ACCOUNT_SID = "AC" + "5" * 32  # not a secret; the stand-in's auth token is (see load)
# 01632 960xxx is Ofcom's range reserved for drama: it reaches nobody.
SIMULATOR_FROM_NUMBER = "+441632960000"
SIMULATOR_API_BASE_URL = "http://127.0.0.1:5001"
CALL_APPROVAL_FORMAT = ("CALL_APPROVAL must be 'hash' or 'number', or a comma list of one of them and "
                        "role:mode entries, e.g. 'hash,admin:number'.")
MAX_REMEMBER_DAYS = 365
DEFAULT_ALLOWED_COUNTRIES = "GB,IM,JE,GG"  # the UK and the Crown Dependencies
REMEMBER_BROWSER_FORMAT = (f"REMEMBER_BROWSER_DAYS must be a whole number of days from 0 (off) to {MAX_REMEMBER_DAYS}, "
                           "or a comma list of one number and role:days entries, e.g. '30,admin:0'.")


class SettingsError(SystemExit):
    """Printed as one line on stderr with exit status 1 (a SystemExit with a message)."""


@dataclass(frozen=True)
class Settings:
    env: str
    database_url: str
    secret_key: str
    data_keys: list[str]
    public_base_url: str
    telephony_provider: str
    twilio_account_sid: str
    twilio_auth_token: str
    twilio_from_number: str
    twilio_messaging_service_sid: str | None
    twilio_api_base_url: str
    redis_url: str | None
    rate_limit_key_prefix: str  # RATE_LIMIT_KEY_PREFIX: instances share counts in Redis under it
    mfa_required_roles: frozenset[str]
    mfa_required_regions: frozenset[str]
    service_name: str
    voice_machine_detection: bool
    extra: dict = field(default_factory=dict)
    # Operations (ops/): log format, Prometheus multiprocess directory, the benchmark's reference endpoint.
    log_format: str | None = None  # None: logging is left to the host (development, tests)
    prometheus_multiproc_dir: str | None = None
    bench_reference_endpoint: bool = False
    trusted_proxies: int = 0  # reverse proxies in front whose X-Forwarded-For/-Proto are believed
    # Browser sessions end after this long unused, and this long after sign-in at the latest
    # (NIST SP 800-63B-4 allows 1 h idle / 24 h at AAL2).
    session_idle_minutes: int = 60
    session_max_hours: int = 12
    # CALL_APPROVAL: "hash" or "number" for every role, and per-role exceptions (parse_call_approval).
    call_approval: str = HASH
    call_approval_by_role: dict[str, str] = field(default_factory=dict)
    # REMEMBER_BROWSER_DAYS: days a browser may skip the second step (0: off), and per-role exceptions.
    remember_days: int = 0
    remember_days_by_role: dict[str, int] = field(default_factory=dict)
    # VOICE_PROMPTS: which recordings calls play (voice_prompts.library.Playback); SERVICE_NAME_CY:
    # the service name the Welsh prompts speak (None: SERVICE_NAME).
    voice_prompts: str = "auto"
    service_name_cy: str | None = None
    # Web Push to the phone app (docs/push.md): no key, no push (devices poll).
    webpush_vapid_private_key: str | None = None
    webpush_subject: str | None = None
    webpush_endpoint_hosts: tuple[str, ...] = ()
    # Every limit's number (mfa/limits.py, docs/limits.md) and where calls and texts may go.
    limits: Limits = field(default_factory=Limits)
    telephony_allowed_countries: frozenset[str] = frozenset(DEFAULT_ALLOWED_COUNTRIES.split(","))
    # Microsoft Entra external MFA (docs/entra.md): None when EAM_ISSUER is unset.
    entra: EntraConfig | None = None
    # AUDIT_RETENTION_DAYS: how long `prune` keeps audit events, finished sign-ins and send records (docs/audit.md).
    audit_retention_days: int = 90

    @property
    def production(self) -> bool:
        return self.env == "production"

    @property
    def public_host(self) -> str:
        return urlsplit(self.public_base_url).hostname or "localhost"

    @property
    def secure_cookies(self) -> bool:
        """Browsers reach the server over https: cookies are Secure and take the __Host- prefix."""
        return self.production or self.public_base_url.startswith("https://")


def _flag(value: str, name: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off"):
        return False
    raise SettingsError(f"{name} must be true or false.")


def _comma_list(value: str) -> frozenset[str]:
    return frozenset(v.strip().lower() for v in value.split(",") if v.strip())


def parse_call_approval(value: str) -> tuple[str, dict[str, str]]:
    """`hash`, `number`, or a comma list of one bare mode (every role) and `role:mode` entries."""
    def mode(word: str) -> str:
        if word not in CALL_APPROVALS:
            raise SettingsError(CALL_APPROVAL_FORMAT)
        return word
    return _per_role("CALL_APPROVAL", value, mode, CALL_APPROVAL_FORMAT, HASH)


def parse_remember_days(value: str) -> tuple[int, dict[str, int]]:
    """`30`, or a comma list of one bare number (every role) and `role:days` entries (`30,admin:0`)."""
    def days(word: str) -> int:
        if not word.isdigit() or int(word) > MAX_REMEMBER_DAYS:
            raise SettingsError(REMEMBER_BROWSER_FORMAT)
        return int(word)
    return _per_role("REMEMBER_BROWSER_DAYS", value, days, REMEMBER_BROWSER_FORMAT, 0)


def _per_role(name: str, value: str, convert, malformed: str, fallback):
    """One bare value for every role and `role:value` overrides, each role once: (default, by role).

    A misspelt role is refused: it would silently leave that role on the default."""
    default = None
    by_role: dict = {}
    for entry in (e.strip().lower() for e in value.split(",")):
        role, colon, word = (part.strip() for part in entry.rpartition(":"))
        converted = convert(word)
        if role in by_role:
            raise SettingsError(malformed)
        if colon and role not in ROLES:
            raise SettingsError(f"{name} names the role {role!r}; roles are {', '.join(ROLES)}.")
        if colon:
            by_role[role] = converted
        elif default is None:
            default = converted
        else:  # two values for every role
            raise SettingsError(malformed)
    return (fallback if default is None else default), by_role


def _dev_secret(instance: Path, name: str, make) -> str:
    """Generated once and kept in the instance folder (development only)."""
    path = instance / name
    if path.exists():
        return path.read_text().strip()
    instance.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value)
    return value


def load(environ: dict, instance: Path) -> Settings:
    get = lambda name, default=None: (environ.get(name) or "").strip() or default  # noqa: E731
    env = get("MFA_ENV", "development")
    if env not in ("development", "production"):
        raise SettingsError("MFA_ENV must be 'development' or 'production'.")
    production = env == "production"

    def secret(name: str, make) -> str:
        value = get(name)
        if value:
            return value
        if production:
            raise SettingsError(f"{name} is required when MFA_ENV=production.")
        return _dev_secret(instance, name.lower(), make)

    secret_key = secret("SECRET_KEY", lambda: secrets.token_urlsafe(48))
    data_keys = [k.strip() for k in secret("DATA_KEY", lambda: Fernet.generate_key().decode()).split(",") if k.strip()]
    for key in data_keys:
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise SettingsError(
                "DATA_KEY must be Fernet keys (url-safe base64 of 32 bytes), comma-separated.") from None

    database_url = get("DATABASE_URL", f"sqlite:///{instance / 'mfa.sqlite3'}")
    scheme, sep, rest = database_url.partition("://")
    if scheme in ("postgres", "postgresql"):  # "postgres://" is what many platforms hand out
        scheme = "postgresql+psycopg"
    if not sep or scheme not in ("sqlite", "postgresql+psycopg", "postgresql+psycopg2"):
        raise SettingsError("DATABASE_URL must be a SQLite or PostgreSQL URL, e.g. postgresql://user@host/db.")
    database_url = f"{scheme}://{rest}"

    public_base_url = get("PUBLIC_BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    parts = urlsplit(public_base_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError("PUBLIC_BASE_URL must be an http(s) URL such as https://mfa.example.org.")
    if production and parts.scheme != "https":  # Twilio's signatures, cookies and links would go in clear
        raise SettingsError("PUBLIC_BASE_URL must be an https URL when MFA_ENV=production, e.g. https://mfa.example.org.")

    provider = get("TELEPHONY_PROVIDER", "simulator")
    if provider not in ("twilio", "simulator"):
        raise SettingsError("TELEPHONY_PROVIDER must be 'twilio' or 'simulator'.")
    if provider == "twilio":
        for name in ("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN", "TWILIO_FROM_NUMBER"):
            if not get(name):
                raise SettingsError(f"{name} is required when TELEPHONY_PROVIDER=twilio.")
    elif production:
        raise SettingsError("TELEPHONY_PROVIDER=simulator reaches no real phones; "
                            "set TELEPHONY_PROVIDER=twilio in production.")
    simulated = provider == "simulator"
    from_number = get("TWILIO_FROM_NUMBER", SIMULATOR_FROM_NUMBER if simulated else None)
    try:
        parsed = phonenumbers.parse(from_number, None)
        valid = from_number.startswith("+") and phonenumbers.is_possible_number(parsed)
    except phonenumbers.NumberParseException:
        valid = False
    if not valid:
        raise SettingsError("TWILIO_FROM_NUMBER must be an E.164 number such as +441134960000.")
    api_base = get("TWILIO_API_BASE_URL", SIMULATOR_API_BASE_URL if simulated else "https://api.twilio.com").rstrip("/")
    if urlsplit(api_base).scheme not in ("http", "https"):
        raise SettingsError("TWILIO_API_BASE_URL must be an http(s) URL.")

    service_name = get("SERVICE_NAME", "Secure Sign-in")
    if len(service_name) > 30 or not set(service_name) <= GSM7:
        raise SettingsError("SERVICE_NAME must be at most 30 plain characters (it goes into one-segment texts).")
    service_name_cy = get("SERVICE_NAME_CY")  # checked like SERVICE_NAME, so Welsh texts could use it too
    if service_name_cy is not None and (len(service_name_cy) > 30 or not set(service_name_cy) <= GSM7):
        raise SettingsError("SERVICE_NAME_CY must be at most 30 plain characters (no circumflexes), like SERVICE_NAME.")
    voice_prompts = get("VOICE_PROMPTS", "auto").lower()
    if voice_prompts not in VOICE_PROMPT_MODES:
        raise SettingsError("VOICE_PROMPTS must be 'auto', 'recorded' or 'say'.")

    host = urlsplit(public_base_url).hostname or "localhost"  # as Settings.public_host
    if not all(fits_one_gsm7_segment(code_message(service_name, "000000", host, lang)) for lang in CODE_MESSAGE):
        raise SettingsError("SERVICE_NAME and the host of PUBLIC_BASE_URL are too long together: "
                            "code texts must fit one 160-character segment.")

    redis_url = get("REDIS_URL")
    if redis_url and urlsplit(redis_url).scheme not in ("redis", "rediss", "unix"):
        raise SettingsError("REDIS_URL must be a redis:// URL.")
    rate_limit_key_prefix = get("RATE_LIMIT_KEY_PREFIX", "mfa")
    if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", rate_limit_key_prefix):
        raise SettingsError("RATE_LIMIT_KEY_PREFIX must be 1 to 64 letters, digits, '_', '.' or '-'.")

    log_format = get("LOG_FORMAT", "json" if production else None)
    if log_format not in (None, "json", "text"):
        raise SettingsError("LOG_FORMAT must be 'json' or 'text'.")
    multiproc_dir = get("PROMETHEUS_MULTIPROC_DIR")
    if multiproc_dir and not os.path.isdir(multiproc_dir):
        raise SettingsError("PROMETHEUS_MULTIPROC_DIR must be an existing directory (emptied before each start).")
    proxies = get("TRUSTED_PROXIES", "0")
    if not proxies.isdigit() or int(proxies) > 5:
        raise SettingsError("TRUSTED_PROXIES must be the number of reverse proxies in front (0 to 5).")
    bench_reference = _flag(get("BENCH_REFERENCE_ENDPOINT", "false"), "BENCH_REFERENCE_ENDPOINT")
    idle_minutes, max_hours = get("SESSION_IDLE_MINUTES", "60"), get("SESSION_MAX_HOURS", "12")
    if not idle_minutes.isdigit() or not 1 <= int(idle_minutes) <= 1440:
        raise SettingsError("SESSION_IDLE_MINUTES must be a whole number of minutes from 1 to 1440.")
    if not max_hours.isdigit() or not 1 <= int(max_hours) <= 24:
        raise SettingsError("SESSION_MAX_HOURS must be a whole number of hours from 1 to 24.")
    if int(idle_minutes) > int(max_hours) * 60:
        raise SettingsError("SESSION_IDLE_MINUTES must not be longer than SESSION_MAX_HOURS.")
    call_approval, call_approval_by_role = parse_call_approval(get("CALL_APPROVAL", HASH))
    remember_days, remember_days_by_role = parse_remember_days(get("REMEMBER_BROWSER_DAYS", "0"))
    webpush_key, webpush_subject, webpush_hosts = _web_push(get, production)
    try:
        limits = limit_catalogue.parse(get)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    allowed_countries = _countries(get("TELEPHONY_ALLOWED_COUNTRIES", DEFAULT_ALLOWED_COUNTRIES))
    retention_days = get("AUDIT_RETENTION_DAYS", "90")
    if not (retention_days.isascii() and retention_days.isdigit()) or not 1 <= int(retention_days) <= 3650:
        raise SettingsError("AUDIT_RETENTION_DAYS must be a whole number of days from 1 to 3650 (default 90).")
    if bench_reference and production:
        raise SettingsError("BENCH_REFERENCE_ENDPOINT is for benchmarks only; it is refused when MFA_ENV=production.")

    return Settings(
        env=env,
        database_url=database_url,
        secret_key=secret_key,
        data_keys=data_keys,
        public_base_url=public_base_url,
        telephony_provider=provider,
        twilio_account_sid=get("TWILIO_ACCOUNT_SID", SIMULATOR_ACCOUNT_SID if simulated else ""),
        # The stand-in's token signs the webhooks it makes: a public one would let anyone who
        # reaches a development server approve its calls. Generated once per instance folder.
        twilio_auth_token=(secret("TWILIO_AUTH_TOKEN", lambda: secrets.token_urlsafe(32)) if simulated
                           else get("TWILIO_AUTH_TOKEN", "")),
        twilio_from_number=from_number,
        twilio_messaging_service_sid=get("TWILIO_MESSAGING_SERVICE_SID"),
        twilio_api_base_url=api_base,
        redis_url=redis_url,
        rate_limit_key_prefix=rate_limit_key_prefix,
        mfa_required_roles=_comma_list(get("MFA_REQUIRED_ROLES", "admin")),
        mfa_required_regions=_comma_list(get("MFA_REQUIRED_REGIONS", "england")),
        service_name=service_name,
        voice_machine_detection=_flag(get("VOICE_MACHINE_DETECTION", "false"), "VOICE_MACHINE_DETECTION"),
        log_format=log_format,
        prometheus_multiproc_dir=multiproc_dir,
        bench_reference_endpoint=bench_reference,
        trusted_proxies=int(proxies),
        session_idle_minutes=int(idle_minutes),
        session_max_hours=int(max_hours),
        call_approval=call_approval,
        call_approval_by_role=call_approval_by_role,
        remember_days=remember_days,
        remember_days_by_role=remember_days_by_role,
        voice_prompts=voice_prompts,
        service_name_cy=service_name_cy,
        webpush_vapid_private_key=webpush_key,
        webpush_subject=webpush_subject,
        webpush_endpoint_hosts=webpush_hosts,
        limits=limits,
        telephony_allowed_countries=allowed_countries,
        entra=_entra(get, production),
        audit_retention_days=int(retention_days),
    )


def _entra(get, production: bool) -> EntraConfig | None:
    """EAM_*: Entra external MFA is on when EAM_ISSUER is set, and then needs the rest (docs/entra.md)."""
    issuer = get("EAM_ISSUER")
    if issuer is None:
        return None
    parts = urlsplit(issuer)
    if (parts.scheme != "https" or not parts.hostname or parts.query or parts.fragment or "@" in parts.netloc
            or issuer.endswith("/") or parts.netloc.endswith(":443") or issuer != issuer.strip()):
        raise SettingsError("EAM_ISSUER must be an https URL with no trailing slash, default port, query or "
                            "fragment, e.g. https://mfa.example.org/entra (Entra compares it exactly).")
    client_id = get("EAM_CLIENT_ID")
    if not client_id or len(client_id) > 255 or not client_id.isprintable() or " " in client_id:
        raise SettingsError("EAM_CLIENT_ID is required when EAM_ISSUER is set: the Client ID the tenant "
                            "administrator enters for the external method (no spaces, at most 255 characters).")
    app_id = (get("EAM_APP_ID") or "").lower()
    if not GUID.fullmatch(app_id):
        raise SettingsError("EAM_APP_ID is required when EAM_ISSUER is set: the Application (client) ID of the "
                            "Entra app registration, a GUID such as 00001111-aaaa-2222-bbbb-3333cccc4444.")
    tenants = frozenset(t.strip().lower() for t in (get("EAM_ALLOWED_TENANTS") or "").split(",") if t.strip())
    if not tenants or not all(GUID.fullmatch(t) for t in tenants):
        raise SettingsError("EAM_ALLOWED_TENANTS is required when EAM_ISSUER is set: the Entra tenant IDs "
                            "(GUIDs) whose sign-ins are served, separated by commas.")
    keys_url = get("EAM_ENTRA_KEYS_URL", ENTRA_KEYS_URL)
    if urlsplit(keys_url).scheme != "https" and (production or urlsplit(keys_url).scheme != "http"):
        raise SettingsError("EAM_ENTRA_KEYS_URL must be an https URL (http only outside production), e.g. "
                            f"{ENTRA_KEYS_URL}.")
    return EntraConfig(issuer=issuer, client_id=client_id, app_id=app_id, allowed_tenants=tenants,
                       keys_url=keys_url, self_link=_flag(get("EAM_SELF_LINK", "true"), "EAM_SELF_LINK"))


def _countries(value: str) -> frozenset[str]:
    """ISO 3166 alpha-2 codes that phonenumbers knows, e.g. 'GB,IM,JE,GG'."""
    codes = frozenset(c.strip().upper() for c in value.split(",") if c.strip())
    unknown = sorted(c for c in codes if c not in phonenumbers.SUPPORTED_REGIONS)
    if not codes or unknown:
        raise SettingsError("TELEPHONY_ALLOWED_COUNTRIES must be ISO 3166 country codes separated by commas, "
                            f"e.g. {DEFAULT_ALLOWED_COUNTRIES}" + (f" (not {', '.join(unknown)})." if unknown else "."))
    return codes


# The browsers' own push services (Chrome/Android, Firefox, Safari/iOS, Edge): where phones' subscriptions point.
WEBPUSH_ENDPOINT_HOSTS = "fcm.googleapis.com,updates.push.services.mozilla.com,web.push.apple.com,.notify.windows.com"


def _web_push(get, production: bool) -> tuple[str | None, str | None, tuple[str, ...]]:
    from devices.webpush import LOOPBACK, VAPID_SUBJECT
    from mfa.webpush_keys import vapid_public_key

    key, subject = get("WEBPUSH_VAPID_PRIVATE_KEY"), get("WEBPUSH_SUBJECT")
    if key:
        try:
            vapid_public_key(key)
        except ValueError:
            raise SettingsError("WEBPUSH_VAPID_PRIVATE_KEY is not a VAPID private key: make one with "
                                "`flask --app app push vapid-keys`.") from None
        if not subject or not VAPID_SUBJECT.fullmatch(subject):
            raise SettingsError("WEBPUSH_SUBJECT must be a mailto: address or an https:// URL when "
                                "WEBPUSH_VAPID_PRIVATE_KEY is set (push services contact it about problems).")
    hosts = tuple(h.strip().lower() for h in get("WEBPUSH_ENDPOINT_HOSTS", WEBPUSH_ENDPOINT_HOSTS).split(",")
                  if h.strip())
    if any(not re.fullmatch(r"\.?[a-z0-9.-]+|\[[0-9a-f:]+\]", h) for h in hosts):
        raise SettingsError("WEBPUSH_ENDPOINT_HOSTS must be host names, or suffixes starting with a dot, "
                            "separated by commas (no scheme, port or path).")
    hosts = tuple(h.strip("[]") for h in hosts)  # "[::1]" is the host "::1" of a URL
    if production and set(hosts) & set(LOOPBACK):
        raise SettingsError("WEBPUSH_ENDPOINT_HOSTS must not list a loopback host when MFA_ENV=production: "
                            "phones subscribe through their browsers' push services.")
    return key, subject, hosts
