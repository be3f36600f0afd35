"""The Tokens tab: what the tokenizer does to the corpus."""
