"""Looking inside a trained model: unit activations over a text and the units that track simple text features,
attention weights per layer and head, the logit lens, and BPTT gradient norms. Qt-free; the Inside tab and
`main.py inspect` both use `look_inside`."""
from engine.inside.bptt import BPTT, InsideError, bptt_norms
from engine.inside.inspect import Inside, Lens, look_inside, token_limit

__all__ = ["BPTT", "Inside", "InsideError", "Lens", "bptt_norms", "look_inside", "token_limit"]
