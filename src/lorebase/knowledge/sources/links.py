"""URLs and links: normalisation, the crawl scope, and the links of HTML and Markdown pages."""

from __future__ import annotations

import posixpath
import re
from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

from selectolax.lexbor import LexborHTMLParser

_TRACKING = re.compile(r"^(utm_\w+|fbclid|gclid|mc_cid|mc_eid|ref_src)$", re.IGNORECASE)
_MD_LINK = re.compile(r"\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_BARE_URL = re.compile(r"(?<![(<\[])https?://[^\s<>()\"']+")


def normalize_url(url: str, base: str | None = None) -> str | None:
    """Absolute http(s) URL without fragment, default port, dot segments or tracking
    parameters, with a lower-case host and sorted query; None for anything else."""
    try:
        joined = urljoin(base, url.strip()) if base else url.strip()
        parts = urlsplit(joined)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            return None
        host = parts.hostname.encode("idna").decode("ascii").lower()
        port = parts.port
    except (ValueError, UnicodeError):
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, 80 if scheme == "http" else 443) else f"{host}:{port}"
    path = parts.path or "/"
    normalized = posixpath.normpath(path)
    if path.endswith("/") and not normalized.endswith("/"):
        normalized += "/"
    normalized = "/" + normalized.lstrip("/") if normalized != "." else "/"
    query = urlencode(
        sorted(
            (k, v)
            for k, v in parse_qsl(parts.query, keep_blank_values=True)
            if not _TRACKING.match(k)
        )
    )
    return urlunsplit((scheme, netloc, normalized, query, ""))


def site_of(url: str) -> str:
    """The crawl scope: host and port, `www.` ignored (http and https are the same site)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    host = host[4:] if host.startswith("www.") else host
    default = 443 if parts.scheme == "https" else 80
    return host if parts.port in (None, default) else f"{host}:{parts.port}"


def html_links(html: str, base: str) -> list[str]:
    tree = LexborHTMLParser(html)
    base_node = tree.css_first("base[href]")
    if base_node is not None:
        base = normalize_url(base_node.attributes.get("href") or "", base) or base
    links: list[str] = []
    for node in tree.css("a[href]"):
        href = (node.attributes.get("href") or "").strip()
        if not href or href.startswith(("#", "mailto:", "javascript:", "tel:", "data:")):
            continue
        rel = (node.attributes.get("rel") or "").lower()
        if "nofollow" in rel:
            continue
        normalized = normalize_url(href, base)
        if normalized:
            links.append(normalized)
    return list(dict.fromkeys(links))


def markdown_links(text: str, base: str) -> list[str]:
    found = [match.group(1) for match in _MD_LINK.finditer(text)]
    found += _BARE_URL.findall(text)
    links = [normalize_url(link, base) for link in found]
    return list(dict.fromkeys(link for link in links if link))
