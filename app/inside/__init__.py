"""The Inside tab: neuron activations over text, attention heads, the logit lens and BPTT gradients."""
