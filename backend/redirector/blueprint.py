"""HTTP for the redirector: the resolve API, /go, the prefix form and the local Cool Papers pages."""

from __future__ import annotations

from typing import Literal

from flask import current_app, redirect, render_template, request
from pydantic import BaseModel, ConfigDict, Field
from werkzeug.routing import PathConverter

from backend.redirector import catalog
from backend.redirector.resolver import CONTEXTS, Resolution, load_grammar, stays_under
from backend.web import limits
from backend.web.api import ApiBlueprint
from backend.web.caps import fmt
from backend.web.errors import ApiError
from backend.web.pages import register_page

bp = ApiBlueprint("redirector", __name__, template_folder="templates")
register_page("Papers (local)", "redirector.catalog_page", "the local Cool-Papers-compatible pages and their URL forms")

Context = Literal["selection", "link", "page", "frame"]


class ResolveQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: str | None = Field(default=None, description="text or URL to resolve (at most RESOLVE_MAX_QUERY_BYTES)")
    context: Context = Field(default="selection", description="where the text came from; only a selection falls back to keyword search")


class ClickInfo(BaseModel):
    """The fields of a right-click as Chrome's contextMenus gives them (any subset), and the tab's title."""

    model_config = ConfigDict(extra="forbid")
    selectionText: str | None = None
    linkUrl: str | None = None
    pageUrl: str | None = None
    frameUrl: str | None = None
    pageTitle: str | None = Field(
        default=None,
        description="the tab's title: searched for when pageUrl is a publisher's paper page and nothing else resolves",
    )


class ResolutionOut(BaseModel):
    kind: Literal["arxiv", "venue", "category", "coolpapers", "search"]
    ids: list[str] = Field(description="canonical ids: arXiv ids without version or subject class, or venue keys")
    target: str = Field(description="the Cool Papers page on the configured base")


def _base() -> str:
    return current_app.config["COOLPAPERS_BASE"].rstrip("/")


def _check_text(name: str, value: str) -> None:
    size = len(value.encode("utf-8", "surrogatepass"))
    limits.check("RESOLVE_MAX_QUERY_BYTES", size, noun="bytes", field=name, said=f"a {name} of {fmt(size)} bytes",
                 fix="send a single URL, id or a short selection")


def _found(resolution: Resolution | None, what: str) -> ResolutionOut:
    if resolution is None:
        raise ApiError(404, f"no paper, venue, category or keywords found in {what}", code="not_resolved")
    return ResolutionOut(**resolution.to_dict())


def _query_text(query: ResolveQuery) -> str:
    if query.q is None:
        raise ApiError(400, "query parameter 'q' is missing: give a URL, an id or some text", field="q")
    _check_text("q", query.q)
    if not query.q.strip():
        raise ApiError(400, "query parameter 'q' is blank: give a URL, an id or some text", field="q")
    return query.q


@bp.api(
    "GET",
    "/api/resolve",
    query=ResolveQuery,
    response=ResolutionOut,
    summary="Resolve text or a URL to a Cool Papers page",
    errors={404: "nothing in the text resolves"},
)
def resolve_get(query: ResolveQuery) -> ResolutionOut:
    text = _query_text(query)
    return _found(load_grammar().resolve(text, query.context, _base()), "q")


@bp.api(
    "POST",
    "/api/resolve",
    body=ClickInfo,
    response=ResolutionOut,
    summary="Resolve a right-click (selection, link, page and frame URLs)",
    errors={404: "no input of the click resolves"},
)
def resolve_post(body: ClickInfo) -> ResolutionOut:
    info = body.model_dump(exclude_none=True)
    for name, value in info.items():
        _check_text(name, value)
    if not any(value.strip() for name, value in info.items() if name != "pageTitle"):
        raise ApiError(400, "give at least one of selectionText, linkUrl, pageUrl, frameUrl (non-blank)")
    return _found(load_grammar().resolve_click(info, _base()), "the click")


def _redirect_to(resolution: Resolution | None, what: str):
    if resolution is None:
        raise ApiError(404, f"No paper found in {what}.", code="not_resolved")
    base = _base()
    # Targets are built from the base, never copied from input; check anyway (prefix and no dot segments, which a
    # browser would resolve above a base with a path) so that a rule bug cannot open a redirect.
    if not stays_under(base, resolution.target):
        raise ApiError(404, "refusing to redirect outside the configured Cool Papers base")
    return redirect(resolution.target, code=302)


@bp.get("/go")
def go():
    """Redirect to the Cool Papers page for ``q``; a friendly page when nothing resolves."""
    text = request.args.get("q")
    if text is None or not text.strip():
        raise ApiError(400, "Type an arXiv id, a paper URL, a DOI or some keywords.", field="q")
    _check_text("q", text)
    # Typed text, as a selection: one URL yields its paper or nothing (no keyword search on "https example com").
    grammar = load_grammar()
    what = "that URL" if grammar.is_one_url(text) else "that text"
    return _redirect_to(grammar.resolve(text, "selection", _base()), what)


def _prefix_target() -> str:
    """The URL appended after the backend's address, query string included, with merged '//' repaired."""
    raw = request.environ.get("RAW_URI") or request.environ.get("REQUEST_URI")
    if not raw:
        raw = request.full_path if request.query_string else request.path
    url = raw.lstrip("/")
    for scheme in ("https:/", "http:/"):
        if url.lower().startswith(scheme) and not url.lower().startswith(scheme + "/"):
            url = scheme + "/" + url[len(scheme) :]
    return url


class AppendedUrlConverter(PathConverter):
    """A path that starts like a URL: a scheme ("https:") or a host with a dot ("arxiv.org").

    Narrower than ``path`` so that, say, GET on a POST-only /api/... route still answers 405, not 404.
    """

    regex = r"(?:[A-Za-z][A-Za-z0-9+.-]*:|[^/]*\.[^/]*)(?:/.*)?"


@bp.record_once
def _register_converter(state) -> None:
    state.app.url_map.converters["appended_url"] = AppendedUrlConverter


@bp.get("/<appended_url:rest>")
def prefix_form(rest: str):
    """``/https://arxiv.org/abs/2307.01850`` (any URL after the backend's address) redirects to its page."""
    url = _prefix_target()
    head = url.split("/", 1)[0].lower()
    if not (head in {"http:", "https:"} or "." in head):
        raise ApiError(404, f"Nothing here: /{rest}")
    _check_text("url", url)
    return _redirect_to(load_grammar().resolve(url, "link", _base()), "that URL")


# --- local Cool-Papers-compatible pages ---------------------------------------------------------------
def _public() -> str:
    return current_app.config["COOLPAPERS_PUBLIC"].rstrip("/")


@bp.get("/arxiv/search")
def arxiv_search():
    query = request.args.get("query", "")
    _check_text("query", query)
    words = load_grammar().search_words(query)
    hits = catalog.search(words)
    entries = [catalog.arxiv_entry(pid, _public()) for pid, _ in hits]
    return render_template(
        "redirector/papers.html",
        heading=f"Search: {query}" if query else "Search",
        query=query,
        entries=entries,
        words=words if request.args.get("highlight") == "1" else [],
        highlight=catalog.highlight,
        public_url=f"{_public()}/arxiv/search?highlight=1&query={query}",
        kind="search",
    )


@bp.get("/arxiv/<path:spec>")
def arxiv_page(spec: str):
    parsed = catalog.parse_arxiv_spec(spec)
    if parsed is None:
        raise ApiError(404, f"/arxiv/{spec} names neither arXiv ids nor arXiv categories.")
    ids, categories = parsed
    entries = [catalog.arxiv_entry(pid, _public()) for pid in ids]
    for category in categories:
        entries.extend(catalog.arxiv_entry(pid, _public()) for pid in catalog.papers_in_category(category))
    heading = ", ".join(categories) if categories and not ids else f"{len(ids)} paper{'s' if len(ids) != 1 else ''}"
    return render_template(
        "redirector/papers.html",
        heading=heading,
        entries=entries,
        words=[],
        highlight=catalog.highlight,
        public_url=f"{_public()}/arxiv/{spec}",
        kind="category" if categories and not ids else "arxiv",
        categories=categories,
    )


@bp.get("/venue/<path:spec>")
def venue_page(spec: str):
    entries = []
    for venue_id in spec.split(","):
        entry = catalog.venue_entry(venue_id.strip(), _public())
        if entry is None:
            raise ApiError(404, f"{venue_id} is not a venue paper id (forms: id@OpenReview, id@ACL, n@year@IJCAI, key@vN@PMLR, "
                "stem@CVPR2025@CVF, slug@osdi24@USENIX, n@AAAI).")
        entries.append(entry)
    return render_template(
        "redirector/papers.html",
        heading=f"{len(entries)} venue paper{'s' if len(entries) != 1 else ''}",
        entries=entries,
        words=[],
        highlight=catalog.highlight,
        public_url=f"{_public()}/venue/{spec}",
        kind="venue",
    )


@bp.get("/papers")
def catalog_page():
    entries = [catalog.arxiv_entry(pid, _public()) for pid in catalog.all_arxiv_ids()]
    return render_template("redirector/catalog.html", entries=entries)


def init_app(app) -> None:
    app.config.setdefault("COOLPAPERS_PUBLIC", "https://papers.cool")
    # COOLPAPERS_BASE is checked by the settings layer (RedirectorConfig): an http(s) URL, no query, no dot segments


__all__ = ["bp", "init_app", "CONTEXTS"]
