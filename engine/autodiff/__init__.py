"""The autodiff tape: numpy modules recorded on a stack, stepped forward and backward for the graph viewer."""
