"""A BERT-base-shaped encoder with random weights, for measuring throughput.

12 layers, hidden 768, 12 heads, feed-forward 3072, sequence 128: the shape of
BERT-base, built from torch.nn alone (no downloads, no transformers package).
Texts are tokenised by hashing words into a 30,522-entry vocabulary, which is
enough to give the GPU BERT's work; the answers mean nothing.
"""

import hashlib
import os

import torch
from torch import nn

VOCAB, HIDDEN, LAYERS, HEADS, FFN, SEQ = 30522, 768, 12, 12, 3072, 128


class Encoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(VOCAB, HIDDEN)
        self.pos = nn.Embedding(SEQ, HIDDEN)
        layer = nn.TransformerEncoderLayer(HIDDEN, HEADS, FFN, activation="gelu", batch_first=True, norm_first=False)
        self.layers = nn.TransformerEncoder(layer, LAYERS, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(HIDDEN)

    def forward(self, ids, mask):
        pos = torch.arange(ids.shape[1], device=ids.device)
        x = self.tok(ids) + self.pos(pos)[None]
        x = self.layers(x, src_key_padding_mask=~mask)
        return self.norm(x[:, 0])  # the [CLS] position


def load(device=None):
    """Returns the encoder on the device, in bfloat16 on CUDA, in eval mode."""
    torch.manual_seed(int(os.environ.get("SEED", "0")))
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    return Encoder().to(device=device, dtype=dtype).eval(), device


def tokenize(texts, device):
    """Hashes each text's words to ids: [CLS]=101 first, padded to SEQ."""
    ids = torch.zeros((len(texts), SEQ), dtype=torch.long)
    mask = torch.zeros((len(texts), SEQ), dtype=torch.bool)
    for i, text in enumerate(texts):
        words = [101] + [int.from_bytes(hashlib.blake2b(w.encode(), digest_size=4).digest(), "little") % VOCAB
                         for w in text.split()[: SEQ - 1]]
        ids[i, : len(words)] = torch.tensor(words)
        mask[i, : len(words)] = True
    return ids.to(device, non_blocking=True), mask.to(device, non_blocking=True)


@torch.inference_mode()
def encode(model, device, texts):
    """Encodes texts in one forward pass; returns one list of 4 floats per text."""
    ids, mask = tokenize(texts, device)
    out = model(ids, mask)
    return out[:, :4].float().cpu().tolist()
