"""Training: MNIST -> a Keras CNN that reads normalised digits. Run with `python -m train --help`."""
