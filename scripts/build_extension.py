"""Build, validate and package the browser extension (Chrome by default, or Firefox).

    .venv/bin/python scripts/build_extension.py --target prod   # dist/prod/, zip (Web Store) and CRX3
    .venv/bin/python scripts/build_extension.py --target dev    # dist/dev/: local backend, stable id
    .venv/bin/python scripts/build_extension.py --browser firefox --target prod   # dist/firefox-prod/ + AMO zip/xpi

The Firefox build is the same source with a Firefox manifest: Manifest V3 with background scripts (an ES
module) instead of a service worker, browser_specific_settings.gecko (id, minimum version, data collection:
none), the same permissions and content scripts, no key and no CRX; its package is the .zip that
addons.mozilla.org takes (also written as .xpi). It passes Mozilla's addons-linter (tests/extension).

Renders manifest.template.json (the version comes from pyproject.toml, the one version source),
copies the runtime files of extension/ into dist/<target>/, writes build-config.js (the default
target base: papers.cool for prod, the local backend for dev), validates the result, and packages
dist/<name>-<version>[-dev].zip (no "key") and a CRX3 signed with .keys/extension.pem, generated on
the first build and never committed. The extension id derived from that key is printed; the dev
manifest carries the public key so the unpacked dev build has the same id.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import re
import shutil
import struct
import sys
import tomllib
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT / "extension"
TEMPLATE = ROOT / "manifest.template.json"
PYPROJECT = ROOT / "pyproject.toml"
DEFAULT_KEY_DIR = ROOT / ".keys"
KEY_FILE = "extension.pem"
PACKAGE_NAME = "cool-papers-redirector"
TARGETS = ("prod", "dev")
BROWSERS = ("chrome", "firefox")
PROD_BASE = "https://papers.cool"
# Firefox: the add-on id (fixed, so that storage and the AMO listing survive updates) and the oldest ESR
# the code runs on (ES module background scripts with JSON import attributes, MV3 activeTab, omnibox).
GECKO_ID = "cool-papers-redirector@papers.cool"
GECKO_MIN_VERSION = "140.0"

# The permissions the code may ask for (the ceiling) and the API each one must be used by.
ALLOWED_PERMISSIONS = {
    "contextMenus": "chrome.contextMenus",
    "notifications": "chrome.notifications",
    "storage": "chrome.storage",
    "activeTab": "chrome.tabs",  # the popup and the command read the active tab's URL
}
BROAD_HOSTS = {"<all_urls>", "*://*/*", "http://*/*", "https://*/*", "file:///*"}
# Sources that are not part of the shipped extension.
EXCLUDED_PARTS = {"test", "node_modules"}
EXCLUDED_NAMES = {"build-config.js", ".DS_Store"}
KINDS = ("arxiv", "venue", "category", "coolpapers", "search")
# Chrome match patterns: <scheme>://<host>/<path>, host "*", "*.domain" or a name; file:// has no host.
MATCH_PATTERN = re.compile(r"<all_urls>|(?:\*|https?|wss?|ftp)://(?:\*|(?:\*\.)?[^/*:]+)(?::\d+)?/.*|file:///.*")
CRX_MAGIC = b"Cr24"
CRX_SIGNED_DATA_PREFIX = b"CRX3 SignedData\x00"
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


class ValidationError(Exception):
    """The built extension is not fit to ship; the message lists every problem."""


@dataclass(frozen=True)
class BuildResult:
    target: str
    browser: str
    version: str
    directory: Path
    zip_path: Path | None
    crx_path: Path | None
    extension_id: str


# --- key and id ---------------------------------------------------------------------------------
def load_or_create_key(key_dir: Path) -> rsa.RSAPrivateKey:
    """The signing key, created (RSA 2048, owner-only file) on first use."""
    path = key_dir / KEY_FILE
    if path.exists():
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path} is not an RSA key")
        return key
    key_dir.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.touch(mode=0o600)
    path.write_bytes(pem)
    print(f"generated a new signing key in {path} (keep it out of version control)")
    return key


def public_key_der(key: rsa.RSAPrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)


def extension_id(spki_der: bytes) -> str:
    """Chrome's id: the first 16 bytes of SHA-256(public key), each nibble written as a..p."""
    return "".join(chr(ord("a") + int(c, 16)) for c in hashlib.sha256(spki_der).hexdigest()[:32])


# --- CRX3 ---------------------------------------------------------------------------------------
def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field (wire type 2)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def crx3(archive: bytes, key: rsa.RSAPrivateKey) -> bytes:
    """Wrap a zip in a CRX3 container (crx3.proto: CrxFileHeader with one sha256_with_rsa proof)."""
    spki = public_key_der(key)
    crx_id = hashlib.sha256(spki).digest()[:16]
    signed_data = _field(1, crx_id)  # SignedData.crx_id
    message = CRX_SIGNED_DATA_PREFIX + struct.pack("<I", len(signed_data)) + signed_data + archive
    signature = key.sign(message, padding.PKCS1v15(), hashes.SHA256())
    proof = _field(1, spki) + _field(2, signature)  # AsymmetricKeyProof
    header = _field(2, proof) + _field(10000, signed_data)  # sha256_with_rsa, signed_header_data
    return CRX_MAGIC + struct.pack("<I", 3) + struct.pack("<I", len(header)) + header + archive


def deterministic_zip(directory: Path, manifest_override: dict | None = None) -> bytes:
    """Zip a folder with sorted entries and fixed timestamps, so equal inputs give equal bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            name = path.relative_to(directory).as_posix()
            data = path.read_bytes()
            if name == "manifest.json" and manifest_override is not None:
                data = (json.dumps(manifest_override, indent=2, ensure_ascii=False) + "\n").encode()
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return buffer.getvalue()


# --- rendering ----------------------------------------------------------------------------------
def project_version() -> str:
    with open(PYPROJECT, "rb") as handle:
        return tomllib.load(handle)["project"]["version"]


def dev_base() -> str:
    """The local backend's address, from the backend's own settings."""
    sys.path.insert(0, str(ROOT))
    try:
        from backend.config import DEFAULTS
    finally:
        sys.path.pop(0)
    return f"http://{DEFAULTS['HOST']}:{DEFAULTS['PORT']}"


def firefox_manifest(manifest: dict) -> dict:
    """The Chrome manifest made Firefox's: background scripts (no service worker), gecko settings, no key."""
    out = {k: v for k, v in manifest.items() if k not in ("key", "minimum_chrome_version")}
    worker = manifest["background"]["service_worker"]
    out["background"] = {"scripts": [worker], "type": manifest["background"].get("type", "module")}
    out["browser_specific_settings"] = {
        "gecko": {
            "id": GECKO_ID,
            "strict_min_version": GECKO_MIN_VERSION,
            # AMO asks every new add-on to declare what it collects: nothing leaves the browser but the
            # user's own navigation to the Cool Papers page they chose.
            "data_collection_permissions": {"required": ["none"]},
        },
        # Firefox for Android reads that declaration from 142 on (desktop from 140)
        "gecko_android": {"strict_min_version": "142.0"},
    }
    return out


def render_manifest(target: str, version: str, public_key: bytes | None) -> dict:
    values = {"VERSION": version, "NAME_MESSAGE": "extNameDev" if target == "dev" else "extName"}
    text = TEMPLATE.read_text(encoding="utf-8")
    missing = sorted(set(re.findall(r"\{\{(\w+)\}\}", text)) - values.keys())
    if missing:
        raise ValidationError(f"manifest.template.json uses unknown placeholders: {missing}")
    rendered = re.sub(r"\{\{(\w+)\}\}", lambda m: values[m.group(1)], text)
    manifest = json.loads(rendered)
    if public_key is not None:
        # Unpacked builds with this key get the same id as the signed CRX (stable for tests and storage).
        manifest["key"] = base64.b64encode(public_key).decode()
    return manifest


def runtime_files(source: Path) -> list[Path]:
    files = []
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if not path.is_file() or rel.name in EXCLUDED_NAMES or rel.name.startswith("."):
            continue
        if EXCLUDED_PARTS & set(rel.parts[:-1]) or rel.name.endswith((".test.mjs", ".test.js", ".md")):
            continue
        files.append(rel)
    return files


# --- validation ---------------------------------------------------------------------------------
class _Refs(HTMLParser):
    """Local files an HTML page loads, and the i18n keys it uses."""

    def __init__(self) -> None:
        super().__init__()
        self.files: list[str] = []
        self.remote: list[str] = []
        self.i18n: set[str] = set()
        self.inline_scripts = 0
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        for name in ("src", "href"):
            value = a.get(name, "")
            if not value or value.startswith("#") or (tag == "a" and name == "href" and not value.endswith(".html")):
                continue
            if re.match(r"^[a-z][a-z0-9+.-]*:", value):
                if tag in ("script", "link", "img", "iframe"):
                    self.remote.append(value)
                continue
            self.files.append(value.split("?")[0].split("#")[0])
        for name in ("data-i18n", "data-i18n-placeholder", "data-i18n-title"):
            if a.get(name):
                self.i18n.add(a[name])
        if tag == "script" and "src" not in a:
            self._in_script = True

    def handle_endtag(self, tag: str) -> None:
        self._in_script = False if tag == "script" else self._in_script

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline_scripts += 1


def _png_size(path: Path) -> tuple[int, int] | None:
    head = path.read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def _match_host(pattern: str) -> str:
    m = re.match(r"^(\*|https?|file|ftp|wss?)://([^/]*)/", pattern)
    return m.group(2) if m else ""


def validate(directory: Path, *, target: str, browser: str = "chrome") -> list[str]:
    """Everything wrong with a built extension folder (empty list: fit to ship)."""
    problems: list[str] = []
    manifest = json.loads((directory / "manifest.json").read_text(encoding="utf-8"))

    def need(rel: str, why: str) -> None:
        if not rel or not (directory / rel).is_file():
            problems.append(f"{why}: missing file {rel!r}")

    if manifest.get("manifest_version") != 3:
        problems.append("manifest_version must be 3")
    if not re.fullmatch(r"(0|[1-9]\d{0,4})(\.(0|[1-9]\d{0,4})){0,3}", str(manifest.get("version", ""))):
        problems.append(f"version {manifest.get('version')!r} is not 1-4 dot-separated integers")

    # every referenced file exists
    for size, rel in manifest.get("icons", {}).items():
        need(rel, f"icons.{size}")
        if (directory / rel).is_file() and _png_size(directory / rel) != (int(size), int(size)):
            problems.append(f"icon {rel} is not a {size}x{size} PNG")
    action = manifest.get("action", {})
    for size, rel in action.get("default_icon", {}).items():
        need(rel, f"action.default_icon.{size}")
    pages = [
        p
        for p in (action.get("default_popup"), manifest.get("options_ui", {}).get("page"), manifest.get("options_page"))
        if p
    ]
    for page in pages:
        need(page, "page")
    background = manifest.get("background", {})
    if browser == "firefox":
        scripts = background.get("scripts", [])
        if not scripts or "service_worker" in background:
            problems.append("Firefox: background.scripts (an event page), not background.service_worker")
        for script in scripts:
            need(script, "background.scripts")
        gecko = manifest.get("browser_specific_settings", {}).get("gecko", {})
        if not gecko.get("id") or not gecko.get("strict_min_version"):
            problems.append("Firefox: browser_specific_settings.gecko needs an id and a strict_min_version")
        if "key" in manifest or "minimum_chrome_version" in manifest:
            problems.append("Firefox: no key and no minimum_chrome_version")
    else:
        need(background.get("service_worker", ""), "background.service_worker")
    if background.get("type") != "module":
        problems.append("the background must be an ES module (background.type = module)")
    for i, script in enumerate(manifest.get("content_scripts", [])):
        for rel in script.get("js", []) + script.get("css", []):
            need(rel, f"content_scripts[{i}]")
        for pattern in script.get("matches", []):
            if not MATCH_PATTERN.fullmatch(pattern):
                problems.append(f"content script match {pattern!r} is not a valid match pattern")
            if pattern in BROAD_HOSTS or _match_host(pattern) in ("*", ""):
                problems.append(f"content script match {pattern!r} is too broad")
    for entry in manifest.get("web_accessible_resources", []):
        for rel in entry.get("resources", []):
            need(rel, "web_accessible_resources")

    # HTML pages: local scripts/styles/images exist, nothing remote, no inline script (MV3 CSP)
    html_keys: set[str] = set()
    for page in directory.rglob("*.html"):
        refs = _Refs()
        refs.feed(page.read_text(encoding="utf-8"))
        for rel in refs.files:
            need(
                (page.parent / rel).relative_to(directory).as_posix() if not rel.startswith("/") else rel.lstrip("/"),
                page.name,
            )
        for url in refs.remote:
            problems.append(f"{page.name} loads remote code or content {url!r}")
        if refs.inline_scripts:
            problems.append(f"{page.name} has inline scripts, which MV3's CSP blocks")
        html_keys |= refs.i18n

    # JS: module imports resolve, chrome.runtime.getURL paths exist, no eval
    code = {}
    for script in directory.rglob("*.js"):
        text = script.read_text(encoding="utf-8")
        code[script.relative_to(directory).as_posix()] = text
        for spec in re.findall(
            r"""(?:^|\s)(?:import|export)\s[^;]*?from\s+["']([^"']+)["']""", text, re.M
        ) + re.findall(r"""import\(\s*["']([^"']+)["']\s*\)""", text):
            if not spec.startswith("."):
                problems.append(f"{script.name} imports {spec!r}, not a file of the extension")
                continue
            need(
                (script.parent / spec).resolve().relative_to(directory.resolve()).as_posix(), f"import in {script.name}"
            )
        for rel in re.findall(r"""getURL\(\s*["']([^"']+)["']""", text):
            need(rel.lstrip("/"), f"getURL in {script.name}")
        if re.search(r"\beval\(|\bnew Function\(", text):
            problems.append(f"{script.name} uses eval/new Function, which MV3 forbids")
    all_code = "\n".join(code.values())

    # permissions: within the allowed set, each one used, no host access beyond content scripts
    permissions = manifest.get("permissions", [])
    for permission in permissions:
        api = ALLOWED_PERMISSIONS.get(permission)
        if api is None:
            problems.append(f"permission {permission!r} is not allowed (allowed: {sorted(ALLOWED_PERMISSIONS)})")
        elif api not in all_code:
            problems.append(f"permission {permission!r} is declared but {api} is never used")
    for api, permission in (
        ("chrome.contextMenus", "contextMenus"),
        ("chrome.notifications", "notifications"),
        ("chrome.storage", "storage"),
    ):
        if api in all_code and permission not in permissions:
            problems.append(f"{api} is used but {permission!r} is not declared")
    for field in ("host_permissions", "optional_host_permissions", "optional_permissions"):
        if manifest.get(field):
            problems.append(f"{field} must be empty (no host access beyond the content scripts)")

    # locales: the default exists, every locale has every key, every used key exists
    locales_dir = directory / "_locales"
    default_locale = manifest.get("default_locale", "")
    need(f"_locales/{default_locale}/messages.json", "default_locale")
    locales = {}
    for messages in sorted(locales_dir.glob("*/messages.json")):
        data = json.loads(messages.read_text(encoding="utf-8"))
        locales[messages.parent.name] = {k: v.get("message", "") for k, v in data.items()}
    if not {"en", "zh_CN"} <= locales.keys():
        problems.append(f"locales en and zh_CN are required, found {sorted(locales)}")
    used = set(re.findall(r"__MSG_(\w+?)__", json.dumps(manifest)))
    used |= html_keys
    used |= set(re.findall(r"""\b(?:t|msg|getMessage)\(\s*["'](\w+)["']""", all_code))
    used |= {f"kind_{kind}" for kind in KINDS}
    reference = locales.get(default_locale, {})
    for name, messages in locales.items():
        for key in sorted(used - messages.keys()):
            problems.append(f"_locales/{name} lacks the message {key!r}")
        for key in sorted(reference.keys() - messages.keys()):
            problems.append(f"_locales/{name} lacks {key!r} (present in {default_locale})")
        if len(messages.get("extDescription", "")) > 132:
            problems.append(f"_locales/{name} extDescription is longer than the Web Store's 132 characters")
        if len(messages.get("extName", "")) > 75:
            problems.append(f"_locales/{name} extName is longer than 75 characters")

    # the rule data the resolver imports; its page patterns become contextMenus documentUrlPatterns,
    # where one invalid pattern makes Chrome refuse the whole menu item
    try:
        rules = json.loads((directory / "rules.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        problems.append(f"rules.json unreadable: {error}")
        rules = {}
    patterns = rules.get("pageHosts", {}).get("patterns", []) if isinstance(rules, dict) else []
    if rules and not patterns:
        problems.append("rules.json has no pageHosts.patterns for the page menu")
    for pattern in patterns:
        if not MATCH_PATTERN.fullmatch(pattern):
            problems.append(f"rules.json pageHosts pattern {pattern!r} is not a valid match pattern")

    if target == "prod" and "key" in manifest:
        problems.append("the prod manifest must not carry a key (the Web Store assigns it)")
    return problems


# --- build --------------------------------------------------------------------------------------
def build(
    target: str,
    *,
    out: Path = ROOT / "dist",
    key_dir: Path = DEFAULT_KEY_DIR,
    package: bool = True,
    base: str | None = None,
    browser: str = "chrome",
) -> BuildResult:
    if target not in TARGETS:
        raise ValueError(f"target must be one of {TARGETS}")
    if browser not in BROWSERS:
        raise ValueError(f"browser must be one of {BROWSERS}")
    version = project_version()
    if browser == "firefox":
        return _build_firefox(target, version, out=out, package=package, base=base)
    key = load_or_create_key(key_dir)
    spki = public_key_der(key)
    manifest = render_manifest(target, version, spki if target == "dev" else None)

    directory = _fill(out / target, manifest, target, base, "chrome")

    problems = validate(directory, target=target)
    if problems:
        raise ValidationError("the built extension is not valid:\n  " + "\n  ".join(problems))

    zip_path = crx_path = None
    if package:
        suffix = "" if target == "prod" else "-dev"
        stem = f"{PACKAGE_NAME}-{version}{suffix}"
        # The Web Store zip never carries a key: it assigns its own.
        store_manifest = {k: v for k, v in manifest.items() if k != "key"}
        archive = deterministic_zip(directory, store_manifest)
        zip_path = out / f"{stem}.zip"
        zip_path.write_bytes(archive)
        crx_path = out / f"{stem}.crx"
        crx_path.write_bytes(crx3(archive, key))
    return BuildResult(target, "chrome", version, directory, zip_path, crx_path, extension_id(spki))


def _fill(directory: Path, manifest: dict, target: str, base: str | None, browser: str) -> Path:
    """A fresh build folder: the runtime files, the build config and the manifest."""
    if directory.exists():
        shutil.rmtree(directory)
    directory.mkdir(parents=True)
    for rel in runtime_files(SOURCE):
        (directory / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(SOURCE / rel, directory / rel)
    _write_config(directory, target, base, browser)
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return directory


def _write_config(directory: Path, target: str, base: str | None, browser: str) -> None:
    default_base = base or (dev_base() if target == "dev" else PROD_BASE)
    config = {"target": target, "browser": browser, "defaultBase": default_base.rstrip("/")}
    (directory / "build-config.js").write_text(
        "// Generated by scripts/build_extension.py; do not edit.\n"
        f"export const BUILD = Object.freeze({json.dumps(config)});\n",
        encoding="utf-8",
    )


def _build_firefox(target: str, version: str, *, out: Path, package: bool, base: str | None) -> BuildResult:
    """dist/firefox-<target>/ and, packaged, <name>-<version>[-dev]-firefox.zip (and the same bytes as .xpi)."""
    manifest = firefox_manifest(render_manifest(target, version, None))
    directory = _fill(out / f"firefox-{target}", manifest, target, base, "firefox")
    problems = validate(directory, target=target, browser="firefox")
    if problems:
        raise ValidationError("the built extension is not valid:\n  " + "\n  ".join(problems))
    zip_path = None
    if package:
        suffix = "" if target == "prod" else "-dev"
        archive = deterministic_zip(directory)
        zip_path = out / f"{PACKAGE_NAME}-{version}{suffix}-firefox.zip"
        zip_path.write_bytes(archive)
        zip_path.with_suffix(".xpi").write_bytes(archive)
    return BuildResult(target, "firefox", version, directory, zip_path, None, GECKO_ID)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Build, validate and package the browser extension.")
    parser.add_argument("--target", choices=TARGETS, default="prod")
    parser.add_argument("--browser", choices=BROWSERS, default="chrome", help="chrome (default) or firefox")
    parser.add_argument("--out", type=Path, default=ROOT / "dist", help="output folder (default: dist/)")
    parser.add_argument(
        "--key-dir", type=Path, default=DEFAULT_KEY_DIR, help="signing key folder (default: .keys/, git-ignored)"
    )
    parser.add_argument("--base", help="default target base (dev default: the local backend from backend/config.py)")
    parser.add_argument("--no-package", action="store_true", help="build and validate the folder only")
    args = parser.parse_args(argv)
    try:
        result = build(
            args.target,
            out=args.out,
            key_dir=args.key_dir,
            package=not args.no_package,
            base=args.base,
            browser=args.browser,
        )
    except ValidationError as error:
        print(error, file=sys.stderr)
        return 1
    print(f"built {result.directory} (version {result.version}, target {result.target}, browser {result.browser})")
    if result.zip_path:
        print(f"zip: {result.zip_path}")
    if result.crx_path:
        print(f"crx: {result.crx_path}")
    elif result.zip_path:
        print(f"xpi: {result.zip_path.with_suffix('.xpi')}")
    print(f"extension id: {result.extension_id}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
