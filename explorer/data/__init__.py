"""The data: MNIST from its files, Keras or the embedded sample, checked; split, flattened, one-hot."""
