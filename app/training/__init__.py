"""The training side of the window: the form on the left (corpus, tokenizer, model family, training knobs, run
buttons) and the Loss tab (the live plot and the earlier runs kept on it)."""
