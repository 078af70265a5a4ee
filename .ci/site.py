"""Build the docs site offline into `_site/`: no Quarto, no network beyond the package registries.

1. Execute every cell of every notebook in nbs/ once, `#| slow` ones included (`#| eval: false` cells are shown, not
   run), with `show_doc` after each exported definition, each notebook in its own process, the longest first, saving the
   outputs in `_site_build/nbs/`. This run is CI's test pass: `nbdev_test --flags slow` runs the same cells.
2. Process them with nbdev's docs processors (front matter, `show_doc`, hidden and exported cells, doc links), as
   `nbdev_docs` does before handing them to Quarto.
3. Convert what Quarto would read from the processed notebooks for Sphinx: the front matter becomes the page's title
   and description, `#| echo/output/include: false` become myst-nb's cell tags, links to the published site become
   relative links, and the index page gets the table of contents.
4. Render with Sphinx + myst-nb + sphinx-book-theme, with MathJax 3 from the npm package `mathjax@3` served from the
   site itself.

Usage: `.venv/bin/python .ci/site.py` (after `bash .ci/setup`), then `python -m http.server -d _site`; `--no-execute`
rebuilds the pages from the notebooks the last build executed (for editing prose).
"""
import json, os, re, shutil, subprocess, sys, time
import yaml
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path

root = Path(__file__).resolve().parent.parent
build, site = root / '_site_build', root / '_site'
MATHJAX = 'mathjax@3'

def directives(source: str) -> dict[str, str]:
    "A cell's `#| key[: value]` lines, as nbdev reads them (key -> value, '' for a bare flag)."
    found = {}
    for line in source.splitlines():
        if not line.startswith('#|'): break
        key, _, value = line[2:].strip().partition(':')
        found[key.strip()] = value.strip().lower()
    return found

def skip_cell(cell) -> bool:
    "The cells `nbdev_test --flags slow` does not run: markdown, `#| eval: false`, `nbdev_export()`."
    if cell.cell_type != 'code' or 'nbdev_export' + '(' in cell.source: return True
    return directives(cell.source).get('eval') == 'false'

def execute(name: str, threads: int | None = None) -> tuple[str, float]:
    """Run every cell of one notebook from nbs/ as `nbdev_test --flags slow` does, with the `show_doc` cells nbdev adds
    after each exported definition, on `threads` CPU threads, and write it, outputs included, to `_site_build/nbs/`."""
    if threads:   # before torch starts its thread pools; the console scripts a notebook runs inherit it too
        for var in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS'): os.environ[var] = str(threads)
    from execnb.nbio import write_nb
    from execnb.shell import CaptureShell
    from fastcore.xtras import working_directory
    from nbdev.processors import add_show_docs
    from nbdev.process import NBProcessor
    os.environ['IN_TEST'] = '1'
    src, start = root / 'nbs' / name, time.time()
    nb = NBProcessor(src, procs=[add_show_docs], rm_directives=False, process=True).nb
    shell = CaptureShell(src)
    shell.run_cell('from nbdev.showdoc import show_doc')
    with working_directory(src.parent):
        try: shell.run_all(nb, exc_stop=True, preproc=skip_cell)
        except Exception: raise RuntimeError(f"{name} failed while building the site:\n{shell.prettytb(fname=src)}") from None
    ran = [c for c in nb.cells if not skip_cell(c)]
    for n, cell in enumerate(ran, 1): cell.execution_count = n   # the site's browser test checks that every cell ran
    write_nb(nb, build / 'nbs' / name)
    return name, time.time() - start

TIMINGS = root / '.site_cache' / 'timings.json'   # seconds per notebook in the last build: the longest start first
MEASURED = root / '.ci' / 'notebook_seconds.json'  # committed: a clean build's seconds, the order for a fresh clone

def longest_first(names: list[str]) -> list[str]:
    """`names` in the order to start them so that two workers finish together: by the last build's time (this
    checkout's, else the committed one), else by the number of `#| slow` cells (those run the real model), then by
    size."""
    last = next((json.loads(f.read_text()) for f in (TIMINGS, MEASURED) if f.exists()), {})
    def guess(name):
        text = (root / 'nbs' / name).read_text()
        return (last.get(name, 0), text.count('"#| slow'), len(text))
    return sorted(names, key=guess, reverse=True)

def executed_notebooks(workers: int = 2):
    """Execute every notebook, `workers` at a time, each in a fresh process with its share of the CPU cores (torch's
    default of one thread per core in each worker would put twice as many threads as cores on the machine)."""
    (build / 'nbs').mkdir(parents=True)
    names = longest_first([p.name for p in (root / 'nbs').glob('*.ipynb')])
    threads, seconds = max(1, (os.cpu_count() or 1) // workers), {}
    print(f"  {workers} notebooks at a time, {threads} torch thread(s) each", flush=True)
    with ProcessPoolExecutor(workers, mp_context=get_context('spawn'), max_tasks_per_child=1) as pool:
        futures = [pool.submit(execute, name, threads) for name in names]
        for future in as_completed(futures):
            try: name, seconds[name] = future.result()
            except BaseException:
                for f in futures: f.cancel()
                raise
            print(f"  executed {name} in {seconds[name]:.0f} s", flush=True)
    TIMINGS.parent.mkdir(exist_ok=True)
    TIMINGS.write_text(json.dumps(seconds, indent=1))

def processed_notebooks() -> Path:
    """nbdev's processing for docs (what `nbdev_docs` hands to Quarto: `FilterDefaults`) of the executed notebooks, into
    `_site_build/proc/`. Its two steps that add and run `show_doc` cells were done while executing."""
    from execnb.nbio import write_nb
    from nbdev.process import NBProcessor
    from nbdev.processors import FilterDefaults, add_show_docs, exec_show_docs
    procs = [p for p in FilterDefaults().procs() if p not in (add_show_docs, exec_show_docs)]
    proc = build / 'proc'
    proc.mkdir(exist_ok=True)
    for f in sorted((build / 'nbs').glob('*.ipynb')):
        nb = NBProcessor(f, procs=procs, process=True).nb
        write_nb(nb, proc / f.name)
    return proc

def local_links(text: str, doc_url: str) -> str:
    """Markdown links to the published docs site become HTML links to the pages beside this one (HTML, so that
    Sphinx passes them through as they are: the site's browser test checks every one of them)."""
    pattern = re.compile(r'\[([^\]]*)\]\(' + re.escape(doc_url) + r'/?([^)\s]*)\)')
    return pattern.sub(lambda m: f'<a href="{m.group(2) or "index.html"}">{m.group(1)}</a>', text)

def display_maths(text: str) -> str:
    "Pandoc (Quarto) reads `$$...$$` inside a paragraph as display maths; MyST only on lines of its own: give it those."
    return re.sub(r'[ \t]*\n?\$\$(.+?)\$\$[ \t]*\n?', lambda m: f'\n\n$${m.group(1)}$$\n\n', text, flags=re.DOTALL)

def api_markdown(text: str, doc_url: str) -> str:
    """`show_doc`'s Markdown for Sphinx: without the rule it starts with (a rule cannot sit inside an output), with
    the anchor nbdev's doc links point at (the name in lower case) before each heading."""
    text = re.sub(r'^---\n', '', text.lstrip())
    text = re.sub(r'^(#{2,6}) (\S+)$', lambda m: f'<span id="{m.group(2).lower()}"></span>\n\n{m.group(0)}', text, flags=re.MULTILINE)
    return local_links(text, doc_url)

def terminal_view(out: dict) -> dict | None:
    """A stream output as a terminal leaves it: each line's last carriage-return segment (a progress bar's final
    state; a bar that cleared itself leaves nothing), ANSI codes gone; None when nothing visible is left."""
    if out.get('output_type') != 'stream': return out
    kept = []
    for line in re.sub(r'\x1b\[[0-9;]*[A-Za-z]', '', ''.join(out['text'])).split('\n'):
        segments = line.rstrip('\r').split('\r')
        if len(segments) == 1 or segments[-1].strip(): kept.append(segments[-1])
    text = '\n'.join(kept)
    return {**out, 'text': text} if text.strip() else None

TAGS = {'echo': 'remove-input', 'output': 'remove-output', 'include': 'remove-cell'}   # Quarto's options -> myst-nb's tags

def sphinx_notebook(nb: dict, doc_url: str) -> tuple[str, dict]:
    "Turn one processed notebook into what myst-nb reads: (page name, notebook)."
    cells, page = [], None
    for cell in nb['cells']:
        source = ''.join(cell['source'])
        if cell['cell_type'] == 'raw' and source.startswith('---'):
            fm = yaml.safe_load(source.strip().strip('-'))
            page = fm.get('output-file', '').removesuffix('.html') or None
            head = f"# {fm['title']}" if 'title' in fm else ''
            if fm.get('description'): head += f"\n\n> {fm['description']}"
            if head: cells.append({'cell_type': 'markdown', 'metadata': {}, 'source': head})
            continue
        if not source.strip() and not cell.get('outputs'): continue   # exported, hidden or emptied by nbdev
        cell = {**cell, 'metadata': {**cell.get('metadata', {})}}
        if cell['cell_type'] == 'code':
            found = directives(source)
            tags = [tag for key, tag in TAGS.items() if found.get(key) == 'false']
            if tags: cell['metadata']['tags'] = tags
            cell['source'] = '\n'.join(l for l in source.splitlines() if not l.startswith('#|')).strip()
            cell['outputs'] = [out for out in map(terminal_view, cell.get('outputs', [])) if out]
            for out in cell['outputs']:
                data = out.get('data', {})
                if 'text/html' in data: data['text/html'] = local_links(''.join(data['text/html']), doc_url)
                if 'text/markdown' in data: data['text/markdown'] = api_markdown(''.join(data['text/markdown']), doc_url)
        elif cell['cell_type'] == 'markdown': cell['source'] = display_maths(local_links(source, doc_url))
        cells.append(cell)
    for i, cell in enumerate(cells): cell.setdefault('id', f'cell-{i}')   # nbformat 5 wants an id on every cell
    python = {'language_info': {'name': 'python', 'pygments_lexer': 'ipython3'}}
    return page, {**nb, 'metadata': {**nb.get('metadata', {}), **python}, 'cells': cells}

def sphinx_source(proc: Path, doc_url: str) -> Path:
    "Write the converted notebooks and Sphinx's conf.py into `_site_build/src/`; the index lists every page."
    src = build / 'src'
    src.mkdir(parents=True)
    pages = []
    for f in sorted(proc.glob('*.ipynb')):
        page, nb = sphinx_notebook(json.loads(f.read_text()), doc_url)
        page = page or f.stem
        (src / f'{page}.ipynb').write_text(json.dumps(nb, indent=1))
        if page != 'index': pages.append(page)
    index = json.loads((src / 'index.ipynb').read_text())
    toc = '```{toctree}\n:hidden:\n:maxdepth: 1\n\n' + '\n'.join(pages) + '\n```'
    index['cells'].append({'cell_type': 'markdown', 'id': 'toc', 'metadata': {}, 'source': toc})
    (src / 'index.ipynb').write_text(json.dumps(index, indent=1))
    shutil.copy(root / 'nbs' / 'styles.css', src / 'styles.css') if (root / 'nbs' / 'styles.css').exists() else None
    from nbdev.config import get_config
    cfg = get_config()   # the footer's author and copyright, from settings.ini
    (src / 'conf.py').write_text(CONF + f"author = {cfg.author!r}\ncopyright = {cfg.copyright!r}\n")
    (src / '_static').mkdir()
    (src / '_static' / 'lrnb.svg').write_text(FAVICON)
    (src / '_static' / 'lrnb.css').write_text(CSS)
    return src

CONF = '''\
project = "lrnb"
extensions = ["myst_nb"]
nb_execution_mode = "off"              # the notebooks were executed before, the nbdev_test way
nb_render_markdown_format = "myst"     # show_doc writes Markdown
myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "attrs_inline"]   # attrs: show_doc's [source]{...} links
myst_heading_anchors = 3
html_theme = "sphinx_book_theme"
html_title = "lrnb"
html_static_path = ["_static"]
mathjax_path = "mathjax/tex-chtml.js"  # MathJax 3 from npm, served by the site itself
html_theme_options = {"show_toc_level": 2, "navigation_with_keys": False}
html_context = {"default_mode": "light"}  # otherwise the theme logs an error on a first visit
html_favicon = "_static/lrnb.svg"      # otherwise the browser asks for /favicon.ico
html_css_files = ["lrnb.css"]
exclude_patterns = ["_build"]
suppress_warnings = ["mystnb.unknown_mime_type"]
'''

FAVICON = '''<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16">
<rect x="1" y="1" width="4" height="14" fill="#1f77b4"/><rect x="7" y="1" width="8" height="4" fill="#ff7f0e"/></svg>
'''   # a tall thin factor times a short wide one

CSS = '''/* Tables a notebook displays (results with a dozen columns) fit the text column: smaller type, tighter cells. */
.cell_output table { font-size: 0.75rem; }
.cell_output table th, .cell_output table td { padding: 0.2rem 0.25rem; }
/* What a cell prints wraps at the box's edge; code lines do not (the notebooks break long calls themselves). */
.cell_output pre { white-space: pre-wrap; overflow-wrap: anywhere; }
'''

def mathjax(cache: Path) -> Path:
    "MathJax 3's browser bundle (`es5/`) from npm, installed once into `cache`."
    es5 = cache / 'node_modules' / 'mathjax' / 'es5'
    if not (es5 / 'tex-chtml.js').exists():
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run(['npm', 'install', '--no-save', '--no-audit', '--no-fund', '--silent', '--prefix', str(cache), MATHJAX], check=True)
    return es5

def build_site(execute: bool = True) -> Path:
    "Everything above, in order; `execute=False` reuses the notebooks executed by the last build."
    from nbdev.config import get_config
    cfg = get_config()
    doc_url = f"{cfg.doc_host}{cfg.doc_baseurl}".rstrip('/')
    start = time.time()
    es5 = mathjax(root / '.site_cache')
    if execute or not (build / 'nbs').exists():
        shutil.rmtree(build, ignore_errors=True)
        executed_notebooks()
        print(f"executed in {time.time() - start:.0f} s", flush=True)
    shutil.rmtree(build / 'src', ignore_errors=True)
    src = sphinx_source(processed_notebooks(), doc_url)
    shutil.copytree(es5, src / '_static' / 'mathjax')
    html = build / 'html'   # myst-nb writes `jupyter_execute/` beside the output folder: keep both in the build folder
    subprocess.run([sys.executable, '-m', 'sphinx', '-b', 'html', '-q', '-W', '--keep-going', str(src), str(html)], check=True)
    shutil.rmtree(site, ignore_errors=True)
    shutil.copytree(html, site, ignore=shutil.ignore_patterns('.buildinfo', '.doctrees'))
    print(f"site written to {site.relative_to(root)}/ in {time.time() - start:.0f} s: python -m http.server -d _site")
    return site

if __name__ == '__main__': build_site(execute='--no-execute' not in sys.argv)
