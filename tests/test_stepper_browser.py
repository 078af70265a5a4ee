"""The step-through panel in a real browser: Voilà serves tests/stepper_app.ipynb on 127.0.0.1, Debian's chromium
(driven by Playwright) clicks Step twice, Run to end and Save, and reads what the panel shows."""
import os, re, socket, subprocess, sys, time
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = Path('/usr/bin/chromium')
ARTIFACTS = ROOT / 'test_artifacts'
playwright = pytest.importorskip('playwright.sync_api', reason='playwright is installed by .ci/setup')


def free_port()->int:
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); return s.getsockname()[1]


@pytest.fixture(scope='module')
def voila_app(tmp_path_factory):
    "Voilà serving the stepper app; yields (url, folder the panel saves to)."
    if not CHROMIUM.exists(): pytest.fail("/usr/bin/chromium is missing: apt-get install chromium (bash .ci/setup does)")
    saved = tmp_path_factory.mktemp('stepper') / 'saved'
    port = free_port()
    env = dict(os.environ, LRNB_SAVE_TO=str(saved), OMP_NUM_THREADS='1', CUDA_VISIBLE_DEVICES='')
    log = open(tmp_path_factory.mktemp('voila') / 'voila.log', 'w')
    proc = subprocess.Popen([str(Path(sys.executable).parent / 'voila'), str(ROOT / 'tests' / 'stepper_app.ipynb'), '--no-browser',
                             f'--port={port}', '--Voila.ip=127.0.0.1', '--show_tracebacks=True',
                             # jupytext's JupyterLab extension (if installed) fails to load in Voilà's page: leave it out
                             "--VoilaConfiguration.extension_denylist=['jupyterlab-jupytext']"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        for _ in range(120):   # the server answers within seconds; the notebook runs when the page is opened
            try:
                with socket.create_connection(('127.0.0.1', port), timeout=1): break
            except OSError: time.sleep(0.5)
        else: pytest.fail(f"voila did not start; its log:\n{Path(log.name).read_text()[-3000:]}")
        yield f'http://127.0.0.1:{port}/', saved
    finally:
        proc.terminate(); proc.wait(timeout=30); log.close()


def test_stepper_panel_in_browser(voila_app):
    url, saved = voila_app
    ARTIFACTS.mkdir(exist_ok=True)
    from lrnb.models import load_model
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                    args=['--no-sandbox', '--disable-background-networking', '--disable-component-update'])
        page = browser.new_page(viewport={'width': 1500, 'height': 1100})
        requests, errors = [], []
        page.on('request', lambda r: requests.append(r.url))
        page.on('console', lambda m: errors.append(f"{m.text} ({m.location.get('url', '')})") if m.type == 'error' else None)
        page.goto(url, timeout=180_000)
        status = page.locator('.widget-html-content').first
        button = lambda name: page.get_by_role('button', name=name, exact=True)
        button('Step').wait_for(timeout=180_000)
        playwright.expect(status).to_contain_text('ready: 4 blocks', timeout=60_000)
        image = lambda: page.locator('.jupyter-widgets-output-area img, .widget-output img').first.get_attribute('src')
        button('Step').click()
        playwright.expect(status).to_contain_text('block 0: 7 layers', timeout=60_000)
        first_map = image()
        button('Step').click()
        playwright.expect(status).to_contain_text('block 1: 7 layers', timeout=60_000)
        page.wait_for_function("src => { const i = document.querySelector('.jupyter-widgets-output-area img, .widget-output img'); return i && i.src !== src; }",
                               arg=first_map, timeout=60_000)   # the plots, rank map included, were redrawn
        assert image() != first_map
        page.screenshot(path=str(ARTIFACTS / 'stepper-two-steps.png'), full_page=True)
        button('Perplexity').click()
        playwright.expect(status).to_contain_text(re.compile(r'perplexity after 2 of 4 blocks: \d+\.\d\d'), timeout=60_000)
        button('Run to end').click()
        playwright.expect(status).to_contain_text('done: 28 layers compressed', timeout=120_000)
        button('Step').click()
        playwright.expect(status).to_contain_text('Step does nothing', timeout=60_000)
        button('Save').click()
        playwright.expect(status).to_contain_text('saved 28 compressed layers', timeout=120_000)
        page.screenshot(path=str(ARTIFACTS / 'stepper-saved.png'), full_page=True)
        browser.close()
    outside = [u for u in requests if not re.match(r'(http://127\.0\.0\.1[:/]|data:|blob:)', u)]
    print('requests leaving 127.0.0.1:', outside, '\nconsole errors:', errors)
    # Voilà's page asks a CDN for Font Awesome (cosmetic; it fails offline): the only request allowed to leave, the only error
    assert all('font-awesome' in u or 'fontawesome' in u for u in outside), outside
    assert all('font-awesome' in e or 'fontawesome' in e for e in errors), errors
    model, _ = load_model(saved, device='cpu')
    assert len(model.config.lrnb['ranks']) == 28
