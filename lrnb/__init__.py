__version__ = "0.1.0"

# The names of the quickstart and the one entry point for recipes, importable as `lrnb.X`; everything else lives in its
# module (lrnb.pareto, ...).
from .models import load_model
from .data import load_texts, token_windows
from .compress import compress
from .evaluate import evaluate
from .save import save_pretrained
from .recipe import Recipe, run_recipe
