"""Evidence: the stack of evidence layers (alignment, transforms, normalisation) and element screening."""
