"""Make a built GX Data Docs site self-contained and safe to serve on the Airflow origin.

GX 1.x pages load jQuery, Bootstrap, bootstrap-table, Font Awesome and Vega from public CDNs
(third-party script on the Airflow origin, and offline the index is an empty frame) and carry
inline scripts and onclick attributes (which a Content-Security-Policy of 'self' must block, or
it would also run injected markup). `harden_site(docs_dir)`, run right after GX builds the site:

- copies the assets shipped in `pipeline/data/datadocs_vendor/` (official npm packages, licences
  kept; README there) to `<docs_dir>/static/vendor/` and points every `<script src>`/`<link href>`
  of a known CDN URL at them (relative paths, so the site works under /dhs-docs, on S3 or as files);
- drops any other third-party `<script>`/`<link>`/`<img>` load (a GX upgrade adding a CDN must
  not bring third-party script back silently; it is logged);
- moves each inline `<script>` into `static/inline/<sha256>.js` and each of GX's
  `onclick="fn('arg')"` into data attributes bound by `dhs-datadocs.js`; every other `on*=`
  attribute is removed.
"""

from __future__ import annotations

import hashlib
import html
import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

VENDOR_DIR = Path(__file__).resolve().parents[1] / "data" / "datadocs_vendor"
SITE_VENDOR = "static/vendor"
SITE_INLINE = "static/inline"
HANDLERS_JS = "dhs-datadocs.js"

#: CDN URL GX 1.x references -> file under datadocs_vendor/ (versions in its README)
CDN_FILES = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap-4.3.1/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap-4.3.1/bootstrap.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/popper.js/1.12.9/umd/popper.min.js": "popper.js-1.12.9/popper.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.css": "bootstrap-table-1.19.1/bootstrap-table.min.css",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/bootstrap-table.min.js": "bootstrap-table-1.19.1/bootstrap-table.min.js",
    "https://unpkg.com/bootstrap-table@1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js":
        "bootstrap-table-1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.js",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css":
        "bootstrap-table-1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://unpkg.com/bootstrap-table@1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css":
        "bootstrap-table-1.19.1/extensions/filter-control/bootstrap-table-filter-control.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.css",
    "https://cdnjs.cloudflare.com/ajax/libs/font-awesome/6.6.0/css/all.min.css": "fontawesome-free-6.6.0/css/all.min.css",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "bootstrap-dark-1.1.0/bootstrap-prefers-dark.min.css",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega-5.33.1/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite-5.23.0/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed-6.29.0/vega-embed.min.js",
}
#: GX's logo from its S3 bucket -> the copy GX itself ships in static/images
GX_LOGO = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/[A-Za-z0-9_.-]+\.png(\?[^\"']*)?")

_SCRIPT = re.compile(r"<script\b([^>]*)>(.*?)</script\s*>", re.S | re.I)
_LINK = re.compile(r"<link\b[^>]*>", re.I)
_IMG = re.compile(r"<img\b[^>]*>", re.I)
_ATTR_URL = re.compile(r"""\b(src|href)\s*=\s*(["'])(.*?)\2""", re.S | re.I)
_ONCLICK = re.compile(r"""\sonclick\s*=\s*"([A-Za-z_][A-Za-z0-9_]*)\((?:'([^'"<>]*)')?\)\s*;?\s*\"""", re.I)
_TAG = re.compile(r"<[A-Za-z][^<>]*>")
_EVENT_ATTR = re.compile(r"""\son[a-z]+\s*=\s*("[^"]*"|'[^']*'|[^\s>]+)""", re.I)
_EXTERNAL = re.compile(r"^(?:[a-z][a-z0-9+.-]*:)?//", re.I)


def _relative(page: Path, docs_dir: Path, target: str) -> str:
    return Path(os.path.relpath(docs_dir / target, page.parent)).as_posix()


def _is_js(attrs: str) -> bool:
    m = re.search(r"""\btype\s*=\s*["']?([^"'\s>]+)""", attrs, re.I)
    return m is None or m.group(1).lower() in ("text/javascript", "application/javascript", "module")


def _harden_page(page: Path, docs_dir: Path, inline_dir: Path) -> None:
    text = page.read_text(encoding="utf-8")

    def local_url(url: str) -> str | None:
        url = html.unescape(url)
        if url in CDN_FILES:
            return _relative(page, docs_dir, f"{SITE_VENDOR}/{CDN_FILES[url]}")
        if GX_LOGO.fullmatch(url):
            return _relative(page, docs_dir, "static/images/logo-long.png")
        return None

    def script(m: re.Match) -> str:
        attrs, body = m.group(1), m.group(2)
        src = _ATTR_URL.search(attrs)
        if src and src.group(1).lower() == "src":
            url = src.group(3)
            if not _EXTERNAL.match(url):
                return m.group(0)
            local = local_url(url)
            if local is None:
                log.warning("Data Docs %s: dropped a third-party script %s", page.name, url)
                return ""
            return f'<script src="{local}"></script>'
        if not _is_js(attrs) or not body.strip():
            return m.group(0)
        digest = hashlib.sha256(body.encode()).hexdigest()[:24]
        (inline_dir / f"{digest}.js").write_text(body, encoding="utf-8")
        return f'<script src="{_relative(page, docs_dir, f"{SITE_INLINE}/{digest}.js")}"></script>'

    def loader(m: re.Match) -> str:
        tag = m.group(0)
        ref = _ATTR_URL.search(tag)
        if not ref:
            return tag
        if not _EXTERNAL.match(ref.group(3)):
            url = ref.group(3)
            # GX links the favicon one folder short on validation pages: point it at the site's static/
            if "static/" in url and not (page.parent / url).exists():
                url = _relative(page, docs_dir, "static/" + url.split("static/", 1)[1])
            return tag[:ref.start(3)] + url + tag[ref.end(3):]
        local = local_url(ref.group(3))
        if local is None:
            log.warning("Data Docs %s: dropped a third-party load %s", page.name, ref.group(3))
            return ""
        tag = tag[:ref.start(3)] + local + tag[ref.end(3):]
        # the hashes are for the CDN's copy; the local file is served from this origin
        return re.sub(r"""\s(?:integrity|crossorigin)\s*=\s*(["'])[^"']*\1""", "", tag)

    text = _SCRIPT.sub(script, text)
    text = _LINK.sub(loader, text)
    text = _IMG.sub(loader, text)

    def handler(m: re.Match) -> str:
        name, arg = m.group(1), m.group(2)
        out = f' data-dhs-onclick="{html.escape(name)}"'
        return out + (f' data-dhs-onclick-arg="{html.escape(arg)}"' if arg is not None else "")

    text = _ONCLICK.sub(handler, text)
    # any other event attribute (injected markup included) would not run under the CSP; remove it
    text = _TAG.sub(lambda m: _EVENT_ATTR.sub("", m.group(0)), text)
    handlers = _relative(page, docs_dir, f"{SITE_VENDOR}/{HANDLERS_JS}")
    if "data-dhs-onclick" in text:
        text = re.sub(r"</body\s*>", f'<script src="{handlers}"></script></body>', text, count=1, flags=re.I)
    page.write_text(text, encoding="utf-8")


def harden_site(docs_dir: str | Path) -> None:
    """Rewrite every page of the GX site in `docs_dir` in place (see the module docstring)."""
    docs_dir = Path(docs_dir)
    shutil.copytree(VENDOR_DIR, docs_dir / SITE_VENDOR, dirs_exist_ok=True)
    inline_dir = docs_dir / SITE_INLINE
    inline_dir.mkdir(parents=True, exist_ok=True)
    for page in sorted(docs_dir.rglob("*.html")):
        _harden_page(page, docs_dir, inline_dir)
