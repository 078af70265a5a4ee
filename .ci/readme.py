"""Write README.md from nbs/index.ipynb (nbdev_readme needs Quarto, which cannot be installed here).

Markdown cells are copied, code cells become ```python blocks without their `#|` directives, hidden cells are
skipped. `--check` fails when README.md is not what this script would write.
"""
import json, sys
from pathlib import Path

root = Path(__file__).resolve().parent.parent
def readme() -> str:
    nb = json.loads((root / 'nbs' / 'index.ipynb').read_text())
    parts = []
    for cell in nb['cells']:
        src = ''.join(cell['source'])
        lines = src.splitlines()
        if cell['cell_type'] == 'markdown': parts.append(src.strip())
        elif cell['cell_type'] == 'code' and not any(l.strip() in ('#| hide', '#|hide') for l in lines):
            code = '\n'.join(l for l in lines if not l.startswith('#|')).strip()
            if code: parts.append(f"```python\n{code}\n```")
    return '\n\n'.join(parts) + '\n'

if __name__ == '__main__':
    text = readme()
    if '--check' in sys.argv:
        if (root / 'README.md').read_text() != text:
            sys.exit("FAIL: README.md is stale: run `python .ci/readme.py` and commit it")
        print("README.md is up to date")
    else: (root / 'README.md').write_text(text)
