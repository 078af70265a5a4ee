"""The offline docs site in a real browser: `.ci/site.py` builds `_site/` (rebuilt here when a notebook is newer), a
local HTTP server serves it on 127.0.0.1, and Debian's chromium (driven by Playwright) opens every page."""
import functools, http.server, json, re, shutil, subprocess, sys, threading
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit
import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / '_site'
CHROMIUM = Path('/usr/bin/chromium')
ARTIFACTS = ROOT / 'test_artifacts' / 'site'
playwright = pytest.importorskip('playwright.sync_api', reason='playwright is installed by .ci/setup')


def site_is_stale() -> bool:
    built = SITE / 'index.html'
    sources = [*(ROOT / 'nbs').glob('*.ipynb'), ROOT / '.ci' / 'site.py']
    return not built.exists() or max(p.stat().st_mtime for p in sources) > built.stat().st_mtime


class Anchors(HTMLParser):
    "Every `href` and every `id` of one page."
    def __init__(self):
        super().__init__(); self.hrefs, self.ids = [], set()
    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get('id'): self.ids.add(attrs['id'])
        if tag == 'a' and attrs.get('href'): self.hrefs.append(attrs['href'])


def anchors(path: Path) -> Anchors:
    parser = Anchors(); parser.feed(path.read_text()); return parser


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args): pass


@pytest.fixture(scope='module')
def site_url():
    if not CHROMIUM.exists(): pytest.fail("/usr/bin/chromium is missing: apt-get install chromium (bash .ci/setup does)")
    if site_is_stale(): subprocess.run([sys.executable, str(ROOT / '.ci' / 'site.py')], check=True, cwd=ROOT)
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(QuietHandler, directory=str(SITE)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f'http://127.0.0.1:{server.server_address[1]}/'
    server.shutdown()


def pages() -> list[str]:
    return sorted(p.name for p in SITE.glob('*.html'))


def test_internal_links_resolve(site_url):
    "Every link between pages of the site points at a page that exists, and at an element id that exists on it."
    broken, checked = [], 0
    for name in pages():
        for href in anchors(SITE / name).hrefs:
            parts = urlsplit(href)
            if parts.scheme or href.startswith('//') or href.startswith('mailto:'): continue   # outside the site: not followed
            target = urlsplit(urljoin(name, href))
            file = SITE / (target.path or name)
            if file.is_dir(): file = file / 'index.html'
            checked += 1
            if not file.exists(): broken.append(f"{name}: {href} (no such file)")
            elif target.fragment and file.suffix == '.html' and target.fragment not in anchors(file).ids:
                broken.append(f"{name}: {href} (no id {target.fragment!r} on {file.name})")
    assert checked > 100, checked
    assert not broken, '\n'.join(broken[:30])


def test_every_page_in_browser(site_url):
    "Each page loads with no console error and no request leaving 127.0.0.1; the API and tutorial pages show what they should."
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    names = pages()
    assert {'index.html', 'compress.html', 'pareto.html', 'stepper.html', 'compare_methods.html'} <= set(names), names
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=['--no-sandbox', '--disable-background-networking', '--disable-component-update'])
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        requests, errors = [], []
        page.on('request', lambda r: requests.append(r.url))
        page.on('console', lambda m: errors.append(f"{m.text} ({m.location.get('url', '')})") if m.type == 'error' else None)
        page.on('pageerror', lambda e: errors.append(str(e)))
        for name in names:
            response = page.goto(site_url + name, wait_until='load')
            assert response.ok, (name, response.status)
            assert page.title(), name
            page.evaluate("() => window.MathJax ? MathJax.startup.promise : null")   # typesetting done
            text = page.locator('main').inner_text()
            unrendered = [t for t in ('$$', r'\frac', r'\sum', r'\sigma', r'\varepsilon') if t in text]
            assert not unrendered, f"{name} shows TeX that was not typeset: {unrendered}"
            if name in ('index.html', 'compress.html', 'pareto.html', 'stepper.html'):
                page.screenshot(path=str(ARTIFACTS / name.replace('.html', '.png')), full_page=True)
            if name == 'compress.html':   # an API page: show_doc's signature of `compress`
                playwright.expect(page.locator('body')).to_contain_text(re.compile(r"def compress\(\s*model"))
            if name == 'pareto.html':     # a tutorial page: a plot and rendered maths
                playwright.expect(page.locator('mjx-container').first).to_be_visible(timeout=30_000)
                images = page.locator('img[src*="_images/"]')
                assert images.count() > 0, "no plot on pareto.html"
                widths = images.evaluate_all("imgs => imgs.map(i => i.complete ? i.naturalWidth : 0)")
                assert min(widths) > 100, widths
                page.screenshot(path=str(ARTIFACTS / 'pareto.png'), full_page=True)
        browser.close()
    outside = [u for u in requests if not re.match(r'(http://127\.0\.0\.1[:/]|data:|blob:)', u)]
    assert not outside, outside[:20]
    assert not errors, errors[:20]


def test_nbdev_docs_processing_runs(tmp_path):
    """`nbdev_docs` (for users who have Quarto) first runs nbdev's `proc_nbs`, which executes every cell of a notebook
    with exports that holds an import or a `show_doc`; a slow cell that also imports would run there and fail. Here
    `proc_nbs` runs on a copy of the project and must process every notebook, with a rendered signature for every
    exported function."""
    for p in ['settings.ini', 'setup.py', '_quarto.yml', 'lrnb']: (shutil.copytree if (ROOT / p).is_dir() else shutil.copy)(ROOT / p, tmp_path / p)
    shutil.copytree(ROOT / 'nbs', tmp_path / 'nbs', symlinks=True)
    code = "from nbdev.serve import proc_nbs; proc_nbs(n_workers=2, force=True)"
    r = subprocess.run([sys.executable, '-c', code], cwd=tmp_path, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    assert 'Found cells containing imports and other code' not in r.stderr, r.stderr[-3000:]
    for src in (ROOT / 'nbs').glob('*.ipynb'):
        cells = json.loads((tmp_path / '_proc' / src.name).read_text())['cells']
        docs = [c for c in cells if c['cell_type'] == 'code' and 'show_doc(' in ''.join(c['source'])]
        exported = '#| export' in src.read_text()
        assert not exported or (docs and all(c['outputs'] for c in docs)), src.name
