"""Where the corpus of real CloudFront configurations is: ``shared/corpus/cloudfront-configs`` next to the checkout
or next to any folder above it (the steering repository's ``shared/``; the files are never copied into this
repository and never edited), or the folder named by ``EDGELAB_CORPUS``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO = Path(__file__).resolve().parents[1]


def _find() -> Path | None:
    given = os.environ.get("EDGELAB_CORPUS")
    if given:
        return Path(given)
    for folder in (_REPO, *_REPO.parents):
        candidate = folder / "shared" / "corpus" / "cloudfront-configs"
        if candidate.is_dir():
            return candidate
    return None


CORPUS = _find()


def corpus_dir() -> Path:
    """The corpus folder, or a skip that says how to provide it."""
    if CORPUS is None or not CORPUS.is_dir():
        pytest.skip("the corpus of real CloudFront configurations was not found: set EDGELAB_CORPUS to the folder "
                    "holding the *.json files (shared/corpus/cloudfront-configs of the steering repository)")
    return CORPUS
