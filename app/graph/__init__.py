"""The Graph tab: the autodiff tape drawn as a graph, stepped forward and backward, with a node inspector."""
