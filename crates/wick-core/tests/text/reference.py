"""Pinned sentence-transformers vectors of all-MiniLM-L6-v2 for Wick's encoder test.

Run once, from this folder, with the model folder the test unpacks
(target/tmp/test-weights/all-MiniLM-L6-v2):
    python -m venv venv && venv/bin/pip install sentence-transformers==6.3.0 torch==2.15.0
    venv/bin/python reference.py MODEL_DIR > minilm-reference.json
"""
import json
import sys

import sentence_transformers
import torch
from sentence_transformers import SentenceTransformer

from sentences import SENTENCES  # noqa: E402  (the same texts the Rust test encodes)

model = SentenceTransformer(sys.argv[1], device="cpu")
vectors = model.encode(SENTENCES, batch_size=32, convert_to_numpy=True, normalize_embeddings=False)
tokens = [len(model.tokenizer(s)["input_ids"]) for s in SENTENCES]
json.dump(
    {
        "produced_by": "crates/wick-core/tests/text/reference.py",
        "sentence_transformers": sentence_transformers.__version__,
        "torch": torch.__version__,
        "max_seq_length": model.max_seq_length,
        "tokens_before_truncation": tokens,
        "vectors": [[round(float(v), 7) for v in row] for row in vectors],
    },
    sys.stdout,
)
print()
