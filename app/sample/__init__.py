"""The Sample tab: decoding strategies streamed token by token, the next-token distribution and the beam tree."""
