"""Local copies of paper pages served over https on loopback under their real host names.

The Chromium tests map the names to this server with --host-resolver-rules, the Firefox test with
network.dns.localDomains (any port: match patterns ignore ports), so the manifest's real match patterns
decide where the content scripts run. The certificate is self-signed for those names; browsers are told
to accept it.
"""

from __future__ import annotations

import datetime as dt
import http.server
import ipaddress
import ssl
import threading
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

PAGES = Path(__file__).resolve().parents[1] / "data" / "extension_pages"
CVF_PAGE = "/content/CVPR2025/html/Park_SplineGS_Robust_Motion-Adaptive_Spline_for_Real-Time_Dynamic_3D_Gaussians_from_CVPR_2025_paper.html"
NEURIPS_PAGE = "/paper_files/paper/2017/hash/3f5ee243547dee91fbd053c1c4a845aa-Abstract.html"
# (host, path with query) -> fixture page
ROUTES = {
    ("arxiv.org", "/abs/2307.01850"): "arxiv_abs.html",
    ("arxiv.org", "/abs/hep-th/9901001"): "arxiv_abs_old.html",
    ("export.arxiv.org", "/abs/1706.03762"): "arxiv_abs_changed.html",
    ("arxiv.org", "/list/cs.CL/new"): "arxiv_list.html",
    ("openreview.net", "/forum?id=B18WgG-CZ"): "openreview_forum.html",
    ("openreview.net", "/group?id=ICLR.cc/2018/Conference"): "openreview_group.html",
    ("aclanthology.org", "/2024.naacl-long.431/"): "acl_paper.html",
    ("aclanthology.org", "/2023.acl-long.1/"): "acl_changed.html",
    ("aclanthology.org", "/volumes/2024.naacl-long/"): "acl_volume.html",
    ("openaccess.thecvf.com", CVF_PAGE): "cvf_paper.html",
    ("www.usenix.org", "/conference/usenixsecurity24/presentation/xu-haichuan"): "usenix_paper.html",
    ("ojs.aaai.org", "/index.php/AAAI/article/view/38818"): "aaai_paper.html",
    ("proceedings.neurips.cc", NEURIPS_PAGE): "neurips_paper.html",
}
# Single-page applications: one shell for every path of the host.
SHELLS = {"ui.adsabs.harvard.edu": "ads_app.html"}
HOSTS = sorted({host for host, _ in ROUTES} | set(SHELLS) | {"www.arxiv.org"})


def self_signed(directory: Path) -> tuple[Path, Path]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "paper hosts (test)")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(h) for h in HOSTS] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


class _PageHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        host = (self.headers.get("Host") or "").split(":")[0]
        page = ROUTES.get((host, self.path)) or SHELLS.get(host)
        if page is None:
            self.send_error(404, f"no fixture for {host}{self.path}")
            return
        body = (PAGES / page).read_bytes()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # keep test output quiet
        pass


class PaperHosts:
    """The https server; ``port`` is where every paper host answers."""

    def __init__(self, tls_dir: Path) -> None:
        cert, key = self_signed(tls_dir)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(cert, key)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="paper-hosts", daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
