"""The offline docs site in a real browser: `.ci/site.py` builds `_site/` (rebuilt here when a notebook is newer), a
local HTTP server serves it on 127.0.0.1, and Debian's chromium (driven by Playwright) opens every page. Besides links,
console errors and maths, each page must show what its notebook computed: every cell ran (slow ones too), every
output and figure is on the page, tables are tables, summaries are whole, and code fits its box."""
import functools, http.server, importlib.util, json, re, shutil, subprocess, sys, threading
import yaml
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit
import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / '_site'
CHROMIUM = Path('/usr/bin/chromium')
ARTIFACTS = ROOT / 'test_artifacts' / 'site'
EXECUTED = ROOT / '_site_build' / 'nbs'   # the notebooks as the site build executed them, outputs included
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


# What each page must show, from the notebooks themselves: the site build executes every cell once (slow ones
# included), and the pages must show what that run produced.

def page_of(notebook: Path) -> str:
    "The page nbdev makes of a notebook: `15_stepper.ipynb` -> `stepper.html`, `05a_checkpoint.ipynb` -> `checkpoint.html`."
    return re.sub(r'^\d+[a-zA-Z0-9]*_', '', notebook.stem.lower()) + '.html'   # nbdev's rule (doclinks._nbpath2html)


def site_builder():
    "The module `.ci/site.py` (the build these tests check), for its helpers."
    spec = importlib.util.spec_from_file_location('site_builder', ROOT / '.ci' / 'site.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


directives = site_builder().directives   # a cell's `#| key[: value]` lines, as nbdev reads them


def output_shown(cell) -> bool:
    "A code cell whose output the page shows (nbdev removes exported and `hide` cells; Quarto's options hide more)."
    d = directives(''.join(cell['source']))
    return cell['cell_type'] == 'code' and not ({'export', 'exports', 'exporti', 'hide', 'default_exp'} & set(d)) \
        and d.get('include') != 'false' and d.get('output') != 'false'


def shown(cell) -> bool:
    "A code cell whose input and output the page shows."
    return output_shown(cell) and directives(''.join(cell['source'])).get('echo') != 'false'


def shows_text(stream: str) -> bool:
    "Whether a terminal would show anything of this text (ANSI codes and progress bars that clear themselves do not)."
    lines = re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', stream).split('\n')
    return any(l.rstrip('\r').split('\r')[-1].strip() for l in lines)


def visible_outputs(cell) -> list:
    "The outputs a reader would see: text, HTML, Markdown or an image (not an empty stream, not a bare widget)."
    out = []
    for o in cell.get('outputs', []):
        if o['output_type'] == 'stream' and shows_text(''.join(o['text'])): out.append(o)
        elif o['output_type'] in ('display_data', 'execute_result'):
            data = o.get('data', {})
            if 'application/vnd.jupyter.widget-view+json' in data: continue   # needs a kernel: not on a static page
            if any(k.startswith(('text/', 'image/')) for k in data): out.append(o)
    return out


def images(cell) -> int:
    return sum(any(k.startswith('image/') for k in o.get('data', {})) for o in cell.get('outputs', []))


def code_text(source: str) -> str:
    "A cell's source as the page shows it: without `#|` lines, whitespace collapsed."
    return ' '.join(' '.join(l for l in source.splitlines() if not l.startswith('#|')).split())


def executed() -> dict[str, dict]:
    "page name -> the executed notebook."
    return {page_of(f): json.loads(f.read_text()) for f in sorted(EXECUTED.glob('*.ipynb'))}


def real_model_pages() -> set[str]:
    "The pages whose notebook runs the real SmolLM2 (its `#| slow` cells)."
    return {page_of(f) for f in (ROOT / 'nbs').glob('*.ipynb') if '"#| slow' in f.read_text()}


def summary(notebook: Path) -> str:
    "The `> ` summary under a notebook's title, every line of it."
    first = json.loads(notebook.read_text())['cells'][0]
    return ' '.join(l[1:].strip() for l in ''.join(first['source']).splitlines() if l.startswith('>'))


def plain(markdown: str) -> str:
    "Markdown as a reader sees its words: no code ticks, no TeX (MathJax draws it), whitespace collapsed."
    return ' '.join(re.sub(r'\$[^$]*\$', ' ', markdown).replace('`', '').split())


def quotes(text: str) -> str:
    "Straight quotes for curly ones (MyST's typography)."
    return text.translate(str.maketrans({'’': "'", '‘': "'", '“': '"', '”': '"'}))


FACTS = """() => {
  const main = document.querySelector('main');
  const quote = main.querySelector('h1 ~ blockquote, section > blockquote');
  const cells = [...main.querySelectorAll('div.cell')].map(c => {
    const input = c.querySelector('.cell_input pre');
    const out = c.querySelector('.cell_output');
    return {input: input ? input.innerText : null,
            output: out ? out.innerText.trim().length + out.querySelectorAll('img, svg, table').length : 0};
  });
  const pres = [...main.querySelectorAll('.cell_output pre')].map(p => p.innerText);
  const wide = [...main.querySelectorAll('pre')].filter(p => p.scrollWidth > p.clientWidth + 1)
    .map(p => [...p.innerText.split('\\n')].sort((a, b) => b.length - a.length)[0]);
  const wideTables = [...main.querySelectorAll('table')].filter(t => t.scrollWidth > t.parentElement.clientWidth + 1)
    .map(t => t.innerText.split('\\n')[0]);
  const imgs = [...main.querySelectorAll('.cell_output img')].map(i => i.complete ? i.naturalWidth : 0);
  const tables = [...main.querySelectorAll('table')].map(t => t.rows.length);
  return {summary: quote ? quote.innerText.trim() : null, cells, pres, wide, wideTables, imgs, tables};
}"""


@pytest.fixture(scope='module')
def facts(site_url):
    "What each page shows, read in chromium at a 1400-pixel-wide window (the code boxes' width there)."
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    found = {}
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=['--no-sandbox'])
        page = browser.new_page(viewport={'width': 1400, 'height': 1000})
        for name in pages():
            page.goto(site_url + name, wait_until='load')
            page.evaluate("() => window.MathJax ? MathJax.startup.promise : null")
            page.evaluate("() => Promise.all([...document.images].map(i => i.complete ? null : i.decode().catch(() => null)))")
            found[name] = page.evaluate(FACTS)
            if name in ('quickstart.html', 'compare_methods.html', 'results.html', 'stepper.html', 'spectrum.html'):
                page.screenshot(path=str(ARTIFACTS / name.replace('.html', '.png')), full_page=True)
        browser.close()
    (ARTIFACTS / 'images_per_page.json').write_text(json.dumps({n: len(f['imgs']) for n, f in found.items()}, indent=1))
    return found


def test_every_cell_ran():
    "The site build ran every code cell of every notebook once, slow ones included (not `#| eval: false` ones)."
    missed = []
    for name, nb in executed().items():
        for cell in nb['cells']:
            src = ''.join(cell['source'])
            if cell['cell_type'] != 'code' or directives(src).get('eval') == 'false' or 'nbdev_export(' in src: continue
            if cell.get('execution_count') is None: missed.append(f"{name}: {src[:80]!r}")
    assert len(executed()) == len(list((ROOT / 'nbs').glob('*.ipynb')))
    assert not missed, f"{len(missed)} cells were not run by the site build:\n" + '\n'.join(missed[:20])


def test_outputs_shown(facts):
    """Every code cell of a page that runs the real model shows an output where the executed notebook has one (its
    text, table or figure), and those pages show outputs at all."""
    missing = []
    for name, nb in executed().items():
        if name not in real_model_pages(): continue
        rendered = {}
        for c in facts[name]['cells']:
            if c['input'] is not None: rendered.setdefault(' '.join(c['input'].split()), []).append(c['output'])
        expected = [c for c in nb['cells'] if shown(c) and visible_outputs(c)
                    and not ''.join(c['source']).startswith('show_doc(')]   # signatures: input hidden by nbdev
        assert expected, f"{name} runs the real model but its notebook shows no output"
        for cell in expected:
            text = code_text(''.join(cell['source']))
            outs = rendered.get(text)
            if outs is None: missing.append(f"{name}: cell not on the page: {text[:70]!r}")
            elif not any(outs): missing.append(f"{name}: no output under {text[:70]!r}")
    assert not missing, '\n'.join(missing[:30])


def test_every_figure_shown(facts):
    "Each page shows (and loads) every image its executed notebook produced in a cell the page shows."
    wrong = []
    for name, nb in executed().items():
        want = sum(images(c) for c in nb['cells'] if output_shown(c))
        got = facts[name]['imgs']
        if len(got) < want or not all(w > 100 for w in got): wrong.append(f"{name}: {want} images made, page shows {got}")
    assert not wrong, '\n'.join(wrong)


MD_RULE = re.compile(r'^\s*\|?\s*:?-{3,}:?\s*(\|\s*:?-{3,}:?\s*)+\|?\s*$', re.MULTILINE)

def test_tables_are_tables(facts):
    "No output block shows a Markdown table as text (pipes and a `|---|` rule); the results page shows its table."
    raw = [f"{name}: {pre[:120]!r}" for name, f in facts.items() for pre in f['pres'] if MD_RULE.search(pre)]
    assert not raw, "Markdown tables shown as raw text:\n" + '\n'.join(raw)
    committed = json.loads((ROOT / 'nbs' / 'bench_results.json').read_text())
    assert len(committed) + 1 in facts['results.html']['tables'], facts['results.html']['tables']   # header + a row each


def test_summaries_whole(facts):
    """Each page's summary is its notebook's whole `>` summary, ending a sentence; and the notebook's title cell holds
    only the title and a one-line summary, the part nbdev reads (it drops the rest of that cell, and reads one line)."""
    wrong = []
    for nb in sorted((ROOT / 'nbs').glob('*.ipynb')):
        name, want = page_of(nb), plain(summary(nb))
        first = ''.join(json.loads(nb.read_text())['cells'][0]['source']).strip().splitlines()
        if not re.fullmatch(r'# \S.*', first[0]) or len(first) != 3 or first[1] or not first[2].startswith('> '):
            wrong.append(f"{nb.name}: the title cell is not '# title', '', '> one-line summary' (nbdev keeps only that)")
        if name not in facts: wrong.append(f"{nb.name}: no page {name}"); continue
        got = facts[name]['summary']
        if not got: wrong.append(f"{name}: no summary under the title"); continue
        if not re.search(r'[.!?)]$', got): wrong.append(f"{name}: summary cut mid-sentence: ...{got[-60:]!r}")
        if quotes(' '.join(got.split()[-4:])) != quotes(' '.join(want.split()[-4:])):
            wrong.append(f"{name}: summary {got[-60:]!r} is not the notebook's, which ends {want[-60:]!r}")
    assert not wrong, '\n'.join(wrong)


def test_code_and_tables_fit(facts):
    """No code box (a cell's code, a command in the prose, a signature) and no table scrolls sideways at a 1400-pixel-wide
    window: the notebooks break long calls and commands (what a cell prints wraps)."""
    wide = [f"{name}: code {line!r}" for name, f in facts.items() for line in f['wide']]
    wide += [f"{name}: table {head!r}" for name, f in facts.items() for head in f['wideTables']]
    assert not wide, f"{len(wide)} code boxes or tables wider than the page:\n" + '\n'.join(wide[:30])
