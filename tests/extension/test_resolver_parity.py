"""The JS resolver (extension/resolver.js, in Node) against the Python one on generated inputs.

Both read extension/rules.json; this checks that the two interpreters of it agree beyond the shared
vectors: random mixes of ids, hosts, separators, percent-escapes and non-ASCII text.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from backend.redirector.resolver import resolve, resolve_click

ROOT = Path(__file__).resolve().parents[2]
CLI = Path(__file__).with_name("resolve_cli.mjs")

FRAGMENTS = [
    "2307.01850",
    "2307.01850v3",
    "0704.0001",
    "1412.9999",
    "1501.00001",
    "1501.0001",
    "1413.12345",
    "0703.1234",
    "2413.12345",
    "2300.12345",
    "12345.678901",
    "arXiv:",
    "arxiv.",
    "ARXIV:",
    "10.48550/arXiv.",
    "hep-th/9901001",
    "math.GT/0309136v2",
    "cond-mat/0612198",
    "solv-int/9912001",
    "cs/0703999",
    "cs/0704001",
    "foo-bar/9901001",
    "q-bio/0309001",
    "astro-ph/9107001",
    "astro-ph/9106001",
    "https://arxiv.org/abs/",
    "https://arxiv.org/pdf/",
    "https://export.arxiv.org/list/",
    "arxiv.org/list/",
    "cs.CL",
    "cs.cl",
    "math",
    "econ.GN",
    "stat.ML/new",
    "CS.LG",
    "https://openreview.net/forum?id=",
    "openreview.net/pdf?noteId=x&id=",
    "B18WgG-CZ",
    "ab_c-D",
    "https://aclanthology.org/",
    "2024.naacl-long.431",
    "P19-1001",
    ".pdf",
    "/",
    "aclweb.org/anthology/",
    "https://www.ijcai.org/proceedings/2023/",
    "0012",
    "ijcai.org/proceedings/2019/0001.pdf",
    "https://proceedings.mlr.press/",
    "v202/",
    "smith23a",
    ".html",
    "/smith23a.pdf",
    "https://papers.cool",
    "/arxiv/2307.01850",
    "/venue/ICML.2025",
    "?sort=1",
    "#x",
    "papers.cool/arxiv/cs.AI",
    "%2F",
    "%3A",
    "%252F",
    "%E4%BD%8E",
    "%ZZ",
    "%",
    "%E4",
    "%C3%A9",
    "%00",
    " ",
    "  ",
    "\n",
    "\t",
    ",",
    ";",
    ".",
    "-",
    "_",
    "(",
    ")",
    "[1]",
    '"',
    "'",
    "<",
    ">",
    "&",
    "=",
    "?",
    "self",
    "consuming",
    "models",
    "低秩",
    "近似",
    "ß",
    "é",
    "Ünïcødé",
    "x2",
    "a",
    "7",
    "ſ",
    "K",
    "İ",
    "ı",
    "\u00a0",
    "\u2028",
    "\u3000",
    "\ufeff",
    "\u0085",
    "\u001c",
    "😀",
    "١٢٣",
    # whitespace on which Python's and JS's \s disagree, inside the classes that use it
    "\ud800",  # lone surrogates (JSON allows them): encoded, never raised on
    "https://papers.cool/x\ud800y",
    "papers.cool/arxiv/x\u0085y",
    "papers.cool/a\ufeffb",
    "openreview.net/forum?a=b\x1cc&id=abc",
    "https://www.google.com/url?sa=t&url=",
    "https%3A%2F%2Farxiv.org%2Fabs%2F2305.17493v2",
    "&usg=x",
    # the reach forms (redirector-reach.md): CVF, USENIX, AAAI, ADS bibcodes, FTP paths, capitals, underscores
    "https://openaccess.thecvf.com/content/",
    "openaccess.thecvf.com/content_",
    "CVPR2025",
    "ICCV2023W",
    "cvpr_2018",
    "ICCV_2019",
    "wacv_2020_workshops",
    "/html/",
    "/papers/",
    "Park_Spline-GS_3D",
    "_CVPR_2025",
    "_ICCV_2019",
    "_WACV_2024",
    "_paper",
    "_supplemental",
    ".pdf",
    "https://www.usenix.org/conference/",
    "usenix.org/system/files/",
    "usenixsecurity24",
    "osdi24",
    "sec24fall",
    "soups2024",
    "/presentation/",
    "xu-haichuan",
    "-prepub-",
    "https://ojs.aaai.org/index.php/AAAI/article/",
    "view/",
    "download/",
    "38818",
    "0042",
    "/42097",
    "https://ui.adsabs.harvard.edu/abs/",
    "adsabs.harvard.edu/abs/",
    "2020arXiv",
    "2014arXiv",
    "201207436",
    "131312345",
    "1401.1234",
    "Z",
    "A",
    "z",
    "/abstract",
    "https://arxiv.org/ftp/",
    "cond-mat/papers/0408/",
    "0408502",
    "0409502",
    "HEP-TH/",
    "Hep-th/",
    "MATH.GT/",
    "9901001",
    "arXiv_",
    "paper_",
    "https://",
    "www.",
    "dl.acm.org/doi/10.1145/",
    "github.com/bojone/rerope",
    "/../",
    "/%2e%2e/",
    "/.%2E/",
    "/./",
    "..",
    "evil.com",
]

# (page, title) pieces for the title fallback: publishers' paper pages and others, clean and hostile titles
PAGES = [
    "https://proceedings.neurips.cc/paper_files/paper/2017/hash/3f5ee243547dee91fbd053c1c4a845aa-Abstract.html",
    "https://papers.nips.cc/paper/7181-attention-is-all-you-need",
    "https://proceedings.neurips.cc/paper_files/paper/2017",
    "https://www.ecva.net/papers/eccv_2024/papers_ECCV/html/1234_ECCV_2024_paper.php",
    "https://dl.acm.org/doi/10.1145/3292500.3330701",
    "https://dl.acm.org/doi/abs/10.1145/3292500.3330701",
    "https://ieeexplore.ieee.org/document/8099726",
    "https://ieeexplore.ieee.org/search/searchresult.jsp",
    "https://link.springer.com/article/10.1007/s11263-015-0816-y",
    "https://link.springer.com/chapter/10.1007/978-3-319-10602-1_48",
    "https://www.sciencedirect.com/science/article/pii/S0004370221000862",
    "https://jmlr.org/papers/v21/20-074.html",
    "https://jmlr.org/papers/v21/",
    "https://example.com/blog/post",
    " https://ieeexplore.ieee.org/document/1 ",
]
TITLES = [
    "Attention is All you Need",
    "Deep Residual Learning | IEEE Conference Publication | IEEE Xplore",
    "Reward is enough - ScienceDirect",
    "ImageNet Large Scale Visual Recognition Challenge | International Journal of Computer Vision",
    "Microsoft COCO | SpringerLink",
    "KDD paper | Proceedings of the 25th ACM SIGKDD",
    "Attention - NeurIPS",
    "ECVA | Some ECCV paper",
    "JMLR: Exploring the Limits",
    "",
    "   ",
    "x" * 1001,
    "é" * 600,
    "😀" * 600,
    "<b>Bold</b> title",
    "a < b and c > d",
    "Research &amp; Development &#38; &#x26;",
    "Title\x00with\x07control",
    "Title\twith\ttabs\n",
    "\ufeffBOM title\u3000",
    "低秩近似 | SpringerLink",
    "ß ſ K İ ı",
    "a",
]


def _reach_input(rng: random.Random) -> str:
    """One input of a new form, built from its grammar with valid and broken parts."""
    pick = rng.choice
    scheme = pick(["https://", "http://", "", "https://www.", "x"])
    form = rng.randrange(8)
    if form == 0:
        folder = pick(["content/CVPR2025", "content/ICCV2023", "content/WACV2024", "content/ICCV2023W", "content/ECCV2018",
                       "content/cvpr2025", "content_cvpr_2018", "content_ICCV_2019", "content_cvpr_2018_workshops",
                       "content_ICCVW_2019", "content"])
        stem = pick(["Park_SplineGS", "Lu_mono-VLN_3D", "", "_x", "Zhang_A_CVPR_2024_paper_B", "Ünï"])
        conf = pick(["CVPR", "ICCV", "WACV", "cvpr", "CVPRW", "ECCV"])
        year = pick(["2025", "2018", "25"])
        tail = pick(["_paper.html", "_paper.pdf", "_supplemental.pdf", ".html", "_paper.htm", "_paper.pdf#page=2", "_paper"])
        return f"{scheme}openaccess.thecvf.com/{folder}/{pick(['html', 'papers', 'supplemental'])}/{stem}_{conf}_{year}{tail}"
    if form == 1:
        conf = pick(["usenixsecurity24", "osdi24", "sec24fall", "soups2024", "nsdi", "Osdi24"])
        slug = pick(["xu-haichuan", "", "li_zhuohan2", "-x", "prepub-12-xu", "Xu"])
        if rng.random() < 0.5:
            return f"{scheme}usenix.org/conference/{conf}/presentation/{slug}{pick(['', '/', '?x=1', '.', 'é'])}"
        return f"{scheme}usenix.org/system/files/{conf}-{slug}{pick(['.pdf', '', '.PDF', '.pdf?x'])}"
    if form == 2:
        n = pick(["38818", "0042", "0", "", "12a"])
        tail = pick(["", "/42097", "/x", "/"])
        kind = pick(["view", "download", "viewx"])
        return f"{scheme}ojs.aaai.org/{pick(['', 'ojs/'])}index.php/{pick(['AAAI', 'aaai', 'ICWSM'])}/article/{kind}/{n}{tail}"
    if form == 3 and rng.random() < 0.5:  # a valid bibcode of either era
        yy, mm = rng.choice([(rng.randint(7, 14), rng.randint(1, 12)), (rng.randint(15, 29), rng.randint(1, 12))])
        number = f".{rng.randint(1, 9999):04d}" if (yy, mm) <= (14, 12) and (yy, mm) >= (7, 4) else f"{rng.randint(1, 99999):05d}"
        bibcode = f"20{yy:02d}arXiv{yy:02d}{mm:02d}{number}{pick('ABZ')}"
        return pick(["", "https://ui.adsabs.harvard.edu/abs/", "adsabs.harvard.edu/abs/"]) + bibcode + pick(["", "/abstract"])
    if form == 3:
        year = pick(["2020", "2014", "20", "19999"])
        yymm = pick(["2012", "1401", "1313", "1500", "0703", "0704"])
        number = pick(["07436", ".1234", "7436", ".12345", "074360"])
        bibcode = f"{year}{pick(['arXiv', 'ARXIV', 'arxiv'])}{yymm}{number}{pick(['Z', 'A', 'z', '', '.', 'ZZ'])}"
        where = pick(["", "https://ui.adsabs.harvard.edu/abs/", "adsabs.harvard.edu/abs/", "x", "_"])
        return where + bibcode + pick(["", "/abstract", "%2Fabstract", "1"])
    if form == 4:
        archive = pick(["cond-mat", "hep-th", "stat", "HEP-TH", "arxiv"])
        folder, number = pick(["0408", "9107", "0704", "9106"]), pick(["0408502", "0409502", "9107001", "0704001", "04085020"])
        return f"{scheme}arxiv.org/ftp/{archive}/papers/{folder}/{number}{pick(['.pdf', 'v2.pdf', '', '.ps.gz'])}"
    if form == 5:
        archive = pick(["HEP-TH", "Hep-th", "hep-TH", "MATH.GT", "MATH.gt", "math.GT", "COND-MAT", "STAT", "CS"])
        return f"{pick(['', 'arXiv:', 'ARXIV:', 'x', '_', '-'])}{archive}/{pick(['9901001', '0309136v2', '9913001'])}"
    if form == 6:
        return f"{pick(['arXiv_', 'paper_', '_', 'x_', 'a._'])}{pick(['2307.01850v1', 'hep-th/9901001', '1412.12345'])}{pick(['.pdf', '_v2', '1'])}"
    base = pick(["https://papers.cool", "http://papers.cool", "papers.cool"])
    dots = "/".join(pick(["..", "%2e%2e", ".%2E", "%2E.", ".", "%2e", "...", "a", "%252e%252e", "evil.com"]) for _ in range(rng.randint(1, 5)))
    return f"{base}/{dots}{pick(['', '/', '?q=../..', '#x'])}"


def _cases(seed: int, count: int) -> list[dict]:
    rng = random.Random(seed)
    bases = ["https://papers.cool", "http://127.0.0.1:5000/", "https://example.org/prefix//", "https://example.org/cool"]
    cases: list[dict] = []
    for i in range(count):
        text = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 9)))
        base = rng.choice(bases)
        if i % 10 in (1, 6):
            text = _reach_input(rng)
            if rng.random() < 0.3:
                text = rng.choice(FRAGMENTS) + text + rng.choice(FRAGMENTS)
            if rng.random() < 0.5:
                cases.append({"text": text, "context": rng.choice(["selection", "link", "page", "frame"]), "base": base})
            else:
                cases.append({"info": {rng.choice(["selectionText", "linkUrl", "pageUrl"]): text}, "base": base})
        elif i % 10 == 9:
            # the title fallback: a page and its tab title, sometimes a selection (a URL or words) or a link
            info = {"pageUrl": rng.choice(PAGES), "pageTitle": rng.choice(TITLES)}
            if rng.random() < 0.3:
                info["selectionText"] = rng.choice(["https://github.com/bojone/rerope", "token healing", "  ", "2307.01850"])
            if rng.random() < 0.2:
                info["linkUrl"] = "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 3)))
            if rng.random() < 0.1:
                info["pageTitle"] = rng.choice([None, 42, ["x"], {"a": 1}])
            cases.append({"info": info, "base": base})
        elif i % 5 == 4:
            keys = ["selectionText", "linkUrl", "pageUrl", "frameUrl"]
            info = {
                k: "".join(rng.choice(FRAGMENTS) for _ in range(rng.randint(1, 5))) for k in keys if rng.random() < 0.5
            }
            cases.append({"info": info, "base": base})
        else:
            cases.append({"text": text, "context": rng.choice(["selection", "link", "page", "frame"]), "base": base})
    return cases


def _python(case: dict):
    found = (
        resolve_click(case["info"], case["base"])
        if "info" in case
        else resolve(case["text"], case["context"], case["base"])
    )
    return None if found is None else found.to_dict()


def test_js_and_python_resolvers_agree_on_generated_inputs():
    node = shutil.which("node") or "/usr/bin/node"
    assert Path(node).exists(), "Node 20 is required for the extension tests"
    cases = _cases(seed=20240201, count=8000)
    run = subprocess.run(
        [node, str(CLI)], input=json.dumps(cases), capture_output=True, text=True, cwd=ROOT, timeout=120
    )
    assert run.returncode == 0, run.stderr
    js = json.loads(run.stdout)
    mismatches = [(c, _python(c), j) for c, j in zip(cases, js, strict=True) if _python(c) != j]
    assert not mismatches, f"{len(mismatches)} mismatches, first: {json.dumps(mismatches[:3], ensure_ascii=False)}"
    # The generator must reach every kind and every new form, or the comparison proves little.
    kinds = {r["kind"] for r in js if r}
    assert kinds == {"arxiv", "venue", "category", "coolpapers", "search"}
    ids = [i for r in js if r for i in r["ids"]]
    for suffix in ("@CVF", "@USENIX", "@AAAI"):
        assert any(i.endswith(suffix) for i in ids), suffix
    assert any(i.startswith("cond-mat/0408502") for i in ids)  # the FTP path
    # both bibcode eras resolved to the id inside: 2014arXiv1401.1234A and 2020arXiv201207436Z
    bibcode = re.compile(r"(?<![0-9])[0-9]{4}arXiv([0-9]{4})(?:\.([0-9]{4})|([0-9]{5}))[A-Z](?![A-Za-z0-9])")
    eras = set()
    for c, r in zip(cases, js, strict=True):
        m = bibcode.search(c.get("text", ""))
        if m and r and r["kind"] == "arxiv" and f"{m[1]}.{m[2] or m[3]}" in r["ids"]:
            eras.add(4 if m[2] else 5)
    assert eras == {4, 5}
    titled = [r for c, r in zip(cases, js, strict=True) if "pageTitle" in c.get("info", {}) and r and r["kind"] == "search"]
    assert len(titled) > 50
    # a base with a path is never left, whatever dot segments the input carries
    for c, r in zip(cases, js, strict=True):
        if r and c["base"].startswith("https://example.org/"):
            assert r["target"].startswith(c["base"].rstrip("/") + "/") and "/../" not in r["target"], (c, r)


@pytest.mark.parametrize("context", ["bogus", ""])
def test_both_reject_an_unknown_context(context):
    with pytest.raises(ValueError):
        resolve("2307.01850", context)
    run = subprocess.run(
        ["node", str(CLI)],
        input=json.dumps([{"text": "2307.01850", "context": context}]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert "context must be one of" in json.loads(run.stdout)[0]["error"]
