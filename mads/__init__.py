"""The MAD ecosystem: the kernel and one module per MAD."""
