"""LM Playground engine: corpora, tokenizers, models, trainer, decoder and the autodiff tape. No Qt here."""
